//! hornet's native data plane (`hornet._native`): the per-packet HORNET functions behind
//! the Python API of `hornet.core`, which stays the readable reference.
//!
//! One module per concept: `primitives` (AES, CTR, GCM, HMAC from RustCrypto crates),
//! `header` (FS_OPEN, PROC_AHDR), `onion` (layers, the source's wrap and unwrap),
//! `replay` (the data replay filter), `relay` (a relay's data-packet decision), `link`
//! (link DATA datagrams), `dataloop` (the relay's data loop in a native thread) over
//! `io` (recvmmsg / sendmmsg: the one module with `unsafe`, each block justified).
//! This file is the Python binding only; secrets stay out of every `repr` and error
//! message.

#![deny(unsafe_code)]

pub mod dataloop;
pub mod header;
pub mod io;
pub mod link;
pub mod onion;
pub mod primitives;
pub mod relay;
pub mod replay;

mod loop_binding;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyString, PyTuple};

use std::sync::{Arc, Mutex};

use crate::dataloop::{lock, Shared};
use crate::onion::{CtrLayer, Layer};
use crate::primitives::{Aes, Gcm256, K, TAG_LEN};
use crate::relay::{Config, Outcome, CHDR_LEN, TYPE_DATA, TYPE_DATA_NESTED};
use crate::replay::DataReplayFilter;

static ERRORS: GILOnceCell<Py<PyModule>> = GILOnceCell::new();

/// A `hornet.errors` exception (``IntegrityError``, ``ReplayError``, ...) with `message`.
fn hornet_error(py: Python<'_>, name: &str, message: &'static str) -> PyErr {
    let module = match ERRORS.get_or_try_init(py, || py.import("hornet.errors").map(Bound::unbind))
    {
        Ok(module) => module,
        Err(err) => return err,
    };
    match module.bind(py).getattr(name) {
        Ok(cls) => PyErr::from_value(match cls.call1((message,)) {
            Ok(exc) => exc,
            Err(err) => return err,
        }),
        Err(err) => err,
    }
}

fn local_error(py: Python<'_>, message: &'static str) -> PyErr {
    hornet_error(py, "LocalProtocolError", message)
}

fn need_len(py: Python<'_>, data: &[u8], len: usize, message: &'static str) -> PyResult<()> {
    if data.len() == len {
        Ok(())
    } else {
        Err(local_error(py, message))
    }
}

/// The relay's result types (`hornet.core.relay`), which `DataPlane.process` returns.
///
/// They are frozen attrs classes without validators or post-init hooks: an instance is
/// `object.__new__(cls)` with each field set through `object.__setattr__`, exactly what
/// their generated `__init__` does, minus that Python frame. A `Drop` per reason is made
/// once (they are immutable); `drops` is in `Reason` order.
struct Results {
    forward: Py<PyAny>,
    deliver: Py<PyAny>,
    drops: Vec<Py<PyAny>>,
    new: Py<PyAny>,
    setattr: Py<PyAny>,
}

impl Results {
    fn make<'py>(
        &self,
        py: Python<'py>,
        cls: &Py<PyAny>,
        fields: &[(&Bound<'py, PyString>, &[u8])],
    ) -> PyResult<Bound<'py, PyAny>> {
        let obj = self.new.bind(py).call1((cls.bind(py),))?;
        let setattr = self.setattr.bind(py);
        for (name, value) in fields {
            setattr.call1((&obj, *name, PyBytes::new(py, value)))?;
        }
        Ok(obj)
    }
}

/// A relay's data plane: the verified-AHDR cache, the epochs' FS PRPs, the replay filter.
#[pyclass(module = "hornet._native")]
struct DataPlane {
    /// Shared with a `RelayLoop` thread, which decides DATA packets under the same lock.
    inner: Shared<relay::DataPlane>,
    results: Results,
}

#[pymethods]
impl DataPlane {
    #[new]
    #[pyo3(signature = (*, max_hops, hardened, epoch_s, skew, fs_tail, cache_size, replay_filter, forward, deliver, drops))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        max_hops: usize,
        hardened: bool,
        epoch_s: i64,
        skew: i64,
        fs_tail: i64,
        cache_size: usize,
        replay_filter: Option<(u32, i64, usize, i64, usize)>,
        forward: Py<PyAny>,
        deliver: Py<PyAny>,
        drops: Vec<Py<PyAny>>,
    ) -> PyResult<Self> {
        if drops.len() != 5 {
            return Err(PyValueError::new_err(
                "one Drop per reason, in Reason order",
            ));
        }
        let object = py.import("builtins")?.getattr("object")?;
        let results = Results {
            forward,
            deliver,
            drops,
            new: object.getattr("__new__")?.unbind(),
            setattr: object.getattr("__setattr__")?.unbind(),
        };
        if !(1..=16).contains(&max_hops) || epoch_s < 1 || skew < 0 || fs_tail < 0 {
            return Err(PyValueError::new_err("data plane parameters out of range"));
        }
        let filter = match replay_filter {
            Some((bits_log2, window_s, max_windows, bits_per_packet, max_bytes)) => {
                Some(checked_replay_filter(
                    bits_log2,
                    window_s,
                    max_windows,
                    bits_per_packet,
                    max_bytes,
                )?)
            }
            None => None,
        };
        let cfg = Config {
            max_hops,
            hardened,
            epoch_s,
            skew,
            fs_tail,
            cache_size,
        };
        Ok(DataPlane {
            inner: Arc::new(Mutex::new(relay::DataPlane::new(cfg, filter))),
            results,
        })
    }

    /// Give the FS PRP key (16 bytes) of key epoch `epoch`.
    fn set_epoch(&mut self, py: Python<'_>, epoch: i64, prp_key: &[u8]) -> PyResult<()> {
        need_len(py, prp_key, K, "an FS PRP key is 16 bytes")?;
        lock(&self.inner).set_epoch(epoch, prp_key);
        Ok(())
    }

    #[getter]
    fn cached_circuits(&self) -> usize {
        lock(&self.inner).cached_circuits()
    }

    #[getter]
    fn replay_memory_bytes(&self) -> usize {
        lock(&self.inner)
            .filter
            .as_ref()
            .map_or(0, DataReplayFilter::memory_bytes)
    }

    /// One packet's decision: a `Forward`, `Deliver` or `Drop`; None for a packet that
    /// is not data (setup, unknown type: the Python path decides those); or an int, the
    /// key epoch whose FS PRP key `set_epoch` must give before the packet is retried.
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        packet: &[u8],
        now: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let results = &self.results;
        let mut inner = lock(&self.inner);
        if packet.len() < CHDR_LEN || packet[1] as usize != inner.max_hops() {
            return Ok(results.drops[relay::Reason::Malformed as usize]
                .bind(py)
                .clone());
        }
        let nested = match packet[0] {
            TYPE_DATA => false,
            TYPE_DATA_NESTED => true,
            _ => return Ok(py.None().into_bound(py)),
        };
        let outcome = inner.process(packet, now, nested);
        drop(inner);
        match outcome {
            Outcome::Forward { next_hop, packet } => results.make(
                py,
                &results.forward,
                &[
                    (intern!(py, "next_hop"), &next_hop),
                    (intern!(py, "packet"), &packet),
                ],
            ),
            Outcome::Deliver {
                circuit_id,
                reply_hop,
                message,
                s,
            } => results.make(
                py,
                &results.deliver,
                &[
                    (intern!(py, "circuit_id"), &circuit_id),
                    (intern!(py, "reply_hop"), &reply_hop),
                    (intern!(py, "message"), &message),
                    (intern!(py, "session_secret"), &s),
                ],
            ),
            Outcome::Drop(reason) => Ok(results.drops[reason as usize].bind(py).clone()),
            Outcome::NeedEpoch(epoch) => Ok(epoch.into_pyobject(py)?.into_any()),
        }
    }

    /// Benchmark support: process each `packet_len`-byte packet of `packets` (one buffer,
    /// read in place) once at `now`, in full, dropping the results; the caller times it.
    fn run_packets(&mut self, packets: &[u8], packet_len: usize, now: f64) -> usize {
        let mut count = 0;
        let mut inner = lock(&self.inner);
        for packet in packets.chunks_exact(packet_len.max(1)) {
            let nested = packet.first() == Some(&TYPE_DATA_NESTED);
            std::hint::black_box(inner.process(packet, now, nested));
            count += 1;
        }
        count
    }

    fn __repr__(&self) -> String {
        format!(
            "DataPlane(cached_circuits={})",
            lock(&self.inner).cached_circuits()
        )
    }
}

/// A data replay filter, its parameters checked as the Python reference checks them.
fn checked_replay_filter(
    bits_log2: u32,
    window_s: i64,
    max_windows: usize,
    bits_per_packet: i64,
    max_bytes: usize,
) -> PyResult<DataReplayFilter> {
    if !(10..=32).contains(&bits_log2)
        || window_s < 1
        || max_windows < 1
        || bits_per_packet < 1
        || max_windows
            .checked_mul(1usize << (bits_log2 - 3))
            .is_none_or(|need| max_bytes < need)
    {
        return Err(PyValueError::new_err(
            "replay filter parameters out of range",
        ));
    }
    Ok(DataReplayFilter::new(
        bits_log2,
        window_s,
        max_windows,
        bits_per_packet,
        max_bytes,
    ))
}

/// The data replay filter on its own (`hornet.core.replay.DataReplayFilter`'s twin), for
/// the differential tests; a relay's `DataPlane` holds its own.
#[pyclass(module = "hornet._native", name = "DataReplayFilter")]
struct ReplayFilter {
    inner: DataReplayFilter,
}

#[pymethods]
impl ReplayFilter {
    #[new]
    fn new(
        bits_log2: u32,
        window_s: i64,
        max_windows: usize,
        bits_per_packet: i64,
        max_bytes: usize,
    ) -> PyResult<Self> {
        Ok(ReplayFilter {
            inner: checked_replay_filter(
                bits_log2,
                window_s,
                max_windows,
                bits_per_packet,
                max_bytes,
            )?,
        })
    }

    fn seen(
        &mut self,
        py: Python<'_>,
        value: &[u8],
        exp: i64,
        now: f64,
        skew: i64,
    ) -> PyResult<bool> {
        need_len(py, value, 16, "a replay filter value is 16 bytes")?;
        Ok(self.inner.seen(value, exp, now, skew))
    }

    #[getter]
    fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes()
    }
}

/// A link session's data path (`hornet.link.channel.Session.seal/open`): two cached
/// AES-256-GCM keys, the send counter and the replay window.
#[pyclass(module = "hornet._native")]
struct LinkSession {
    /// Shared with a `RelayLoop` thread that seals and opens under the same counters.
    inner: Shared<link::LinkSession>,
}

#[pymethods]
impl LinkSession {
    #[new]
    fn new(
        py: Python<'_>,
        send_key: &[u8],
        receive_key: &[u8],
        send_type: u8,
        limit: u64,
    ) -> PyResult<Self> {
        let send: [u8; 32] = send_key
            .try_into()
            .map_err(|_| local_error(py, "link keys are 32 bytes"))?;
        let receive: [u8; 32] = receive_key
            .try_into()
            .map_err(|_| local_error(py, "link keys are 32 bytes"))?;
        Ok(LinkSession {
            inner: Arc::new(Mutex::new(link::LinkSession::new(
                &send, &receive, send_type, limit,
            ))),
        })
    }

    #[getter]
    fn sent(&self) -> u64 {
        lock(&self.inner).sent
    }

    #[setter]
    fn set_sent(&mut self, sent: u64) {
        lock(&self.inner).sent = sent;
    }

    #[getter]
    fn top(&self) -> i128 {
        lock(&self.inner).top.map_or(-1, i128::from)
    }

    fn seal<'py>(&mut self, py: Python<'py>, packet: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let sealed = lock(&self.inner).seal(packet);
        match sealed {
            Some(datagram) => Ok(PyBytes::new(py, &datagram)),
            None => Err(local_error(
                py,
                "link session exhausted its counters; rekey first",
            )),
        }
    }

    fn open<'py>(&mut self, py: Python<'py>, datagram: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let opened = lock(&self.inner).open(datagram);
        match opened {
            Ok(packet) => Ok(PyBytes::new(py, &packet)),
            Err(link::LinkError::Short) => Err(hornet_error(
                py,
                "MalformedInputError",
                "link datagram shorter than its header and tag",
            )),
            Err(link::LinkError::TooOld) => Err(hornet_error(
                py,
                "ReplayError",
                "link counter is older than the replay window",
            )),
            Err(link::LinkError::Duplicate) => Err(hornet_error(
                py,
                "ReplayError",
                "link counter was already received",
            )),
            Err(link::LinkError::Tag) => {
                Err(hornet_error(py, "IntegrityError", "AEAD tag mismatch"))
            }
        }
    }

    fn __repr__(&self) -> String {
        format!("LinkSession(sent={})", lock(&self.inner).sent)
    }
}

/// One hop's keys as the Python side hands them over: (prp, enc, tag, gcm), 16 bytes each.
type KeyTuple = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

fn layers_from(py: Python<'_>, keys: Vec<KeyTuple>) -> PyResult<Vec<Layer>> {
    keys.iter()
        .map(|(prp, enc, tag, gcm)| {
            if [prp, enc, tag, gcm].iter().any(|k| k.len() != K) {
                return Err(local_error(py, "hop keys are 16 bytes each"));
            }
            Ok(Layer::from_keys(prp, enc, tag, gcm))
        })
        .collect()
}

/// The source's forward onion (`hornet.core.onion.ForwardOnion`), from each hop's
/// (prp, enc, tag, gcm) keys in path order.
#[pyclass(module = "hornet._native")]
struct ForwardOnion {
    inner: onion::ForwardOnion,
}

#[pymethods]
impl ForwardOnion {
    #[new]
    #[pyo3(signature = (*, hardened, hop_keys, max_hops))]
    fn new(
        py: Python<'_>,
        hardened: bool,
        hop_keys: Vec<KeyTuple>,
        max_hops: usize,
    ) -> PyResult<Self> {
        if hop_keys.is_empty() || hop_keys.len() > max_hops || max_hops > 16 {
            return Err(local_error(py, "path length must be in [1, max_hops]"));
        }
        let layers = layers_from(py, hop_keys)?;
        Ok(ForwardOnion {
            inner: onion::ForwardOnion {
                hardened,
                layers,
                max_hops,
            },
        })
    }

    /// (IV_0, T_0, O_0) for the innermost `iv`, `message` and the tag array's `padding`.
    fn wrap<'py>(
        &self,
        py: Python<'py>,
        iv: &[u8],
        message: &[u8],
        padding: &[u8],
    ) -> PyResult<Bound<'py, PyTuple>> {
        need_len(py, iv, K, "the IV is 16 bytes")?;
        let expected = if self.inner.hardened {
            (self.inner.max_hops - self.inner.layers.len()) * TAG_LEN
        } else {
            padding.len()
        };
        need_len(
            py,
            padding,
            expected,
            "tag-array padding has the wrong length",
        )?;
        let mut payload = message.to_vec();
        let (iv, tags) = self.inner.wrap(iv, &mut payload, padding);
        (
            PyBytes::new(py, &iv),
            PyBytes::new(py, &tags),
            PyBytes::new(py, &payload),
        )
            .into_pyobject(py)
    }

    fn __repr__(&self) -> String {
        format!("ForwardOnion(hops={})", self.inner.layers.len())
    }
}

/// The source's backward onion (`hornet.core.onion.BackwardOnion`), from each layer's
/// (prp, enc) keys in the order the layers were added.
#[pyclass(module = "hornet._native")]
struct BackwardOnion {
    inner: onion::BackwardOnion,
}

#[pymethods]
impl BackwardOnion {
    #[new]
    fn new(py: Python<'_>, hop_keys: Vec<(Vec<u8>, Vec<u8>)>) -> PyResult<Self> {
        let mut layers = Vec::with_capacity(hop_keys.len());
        for (prp, enc) in hop_keys.iter().rev() {
            if prp.len() != K || enc.len() != K {
                return Err(local_error(py, "hop keys are 16 bytes each"));
            }
            layers.push(CtrLayer {
                prp: Aes::new(prp),
                enc: Aes::new(enc),
            });
        }
        Ok(BackwardOnion {
            inner: onion::BackwardOnion { layers },
        })
    }

    fn unwrap<'py>(
        &self,
        py: Python<'py>,
        iv: &[u8],
        payload: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        need_len(py, iv, K, "the IV is 16 bytes")?;
        PyBytes::new_with(py, payload.len(), |buf| {
            buf.copy_from_slice(payload);
            self.inner.unwrap(iv, buf);
            Ok(())
        })
    }

    fn __repr__(&self) -> String {
        format!("BackwardOnion(hops={})", self.inner.layers.len())
    }
}

/// AES-256-GCM under a cached 32-byte key: `seal(nonce, plaintext, aad)` returns
/// ciphertext ‖ tag; `open` raises `IntegrityError` on a bad tag or a short input.
#[pyclass(module = "hornet._native")]
struct Aes256Gcm {
    gcm: Gcm256,
}

#[pymethods]
impl Aes256Gcm {
    #[new]
    fn new(py: Python<'_>, key: &[u8]) -> PyResult<Self> {
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| local_error(py, "AES-256-GCM key must be 32 bytes"))?;
        Ok(Aes256Gcm {
            gcm: Gcm256::new(&key),
        })
    }

    #[pyo3(signature = (nonce, plaintext, aad=None))]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        nonce: &[u8],
        plaintext: &[u8],
        aad: Option<&[u8]>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        need_len(py, nonce, 12, "the nonce is 12 bytes")?;
        let n = plaintext.len();
        PyBytes::new_with(py, n + TAG_LEN, |buf| {
            buf[..n].copy_from_slice(plaintext);
            let tag = self.gcm.seal(nonce, aad.unwrap_or(&[]), &mut buf[..n]);
            buf[n..].copy_from_slice(&tag);
            Ok(())
        })
    }

    #[pyo3(signature = (nonce, ciphertext, aad=None))]
    fn open<'py>(
        &self,
        py: Python<'py>,
        nonce: &[u8],
        ciphertext: &[u8],
        aad: Option<&[u8]>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        need_len(py, nonce, 12, "the nonce is 12 bytes")?;
        if ciphertext.len() < TAG_LEN {
            return Err(hornet_error(py, "IntegrityError", "AEAD tag mismatch"));
        }
        let n = ciphertext.len() - TAG_LEN;
        let mut plain = ciphertext[..n].to_vec();
        if !self
            .gcm
            .open(nonce, aad.unwrap_or(&[]), &mut plain, &ciphertext[n..])
        {
            return Err(hornet_error(py, "IntegrityError", "AEAD tag mismatch"));
        }
        Ok(PyBytes::new(py, &plain))
    }

    /// Benchmark support: seal each `length`-byte plaintext of `plaintexts` (one buffer)
    /// once, copied into a fresh buffer as a relay copies a packet; the caller times it.
    fn run_seals(
        &self,
        py: Python<'_>,
        nonce: &[u8],
        plaintexts: &[u8],
        length: usize,
    ) -> PyResult<usize> {
        need_len(py, nonce, 12, "the nonce is 12 bytes")?;
        let mut count = 0;
        for plaintext in plaintexts.chunks_exact(length.max(1)) {
            let mut buf = plaintext.to_vec();
            let tag = self.gcm.seal(nonce, &[], &mut buf);
            std::hint::black_box((buf, tag));
            count += 1;
        }
        Ok(count)
    }

    fn __repr__(&self) -> &'static str {
        "Aes256Gcm(<key hidden>)"
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<DataPlane>()?;
    m.add_class::<ForwardOnion>()?;
    m.add_class::<BackwardOnion>()?;
    m.add_class::<Aes256Gcm>()?;
    m.add_class::<ReplayFilter>()?;
    m.add_class::<LinkSession>()?;
    m.add_class::<loop_binding::RelayLoop>()?;
    m.add_function(wrap_pyfunction!(loop_binding::send_datagrams, m)?)?;
    Ok(())
}
