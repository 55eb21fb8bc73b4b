//! The Python binding of the native data loop (`dataloop`): `RelayLoop` and the
//! benchmarks' batched sender `send_datagrams`. See `hornet/transport/native_loop.py`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::dataloop::{self, lock, Event, Mode, Peer, Shared, Tables, Usable};
use crate::header::NODE_ID_LEN;
use crate::io::{self, EventFd};
use crate::{DataPlane, LinkSession};

fn address(host: &str, port: u16) -> PyResult<SocketAddr> {
    let ip: IpAddr = host
        .parse()
        .map_err(|_| PyValueError::new_err("a numeric IP address is required"))?;
    Ok(SocketAddr::new(ip, port))
}

fn py_address(py: Python<'_>, addr: &SocketAddr) -> PyResult<Py<PyAny>> {
    Ok((addr.ip().to_string(), addr.port())
        .into_pyobject(py)?
        .into_any()
        .unbind())
}

fn usable(session: &Bound<'_, LinkSession>, remaining: f64) -> Usable {
    let remaining = Duration::from_secs_f64(remaining.clamp(0.0, 1e9));
    Usable {
        session: Arc::clone(&session.borrow().inner),
        until: Instant::now() + remaining,
    }
}

/// A relay's data loop (or a plain forwarder's, or a counting sink's) on a duplicate of
/// the socket descriptor `fd`, run by `start` in a thread of its own until `stop`.
#[pyclass(module = "hornet._native")]
pub struct RelayLoop {
    fd: i32,
    mode: Mode,
    batch: usize,
    tables: Shared<Tables>,
    events: Arc<EventFd>,
    thread: Option<(JoinHandle<()>, Arc<EventFd>)>,
}

impl RelayLoop {
    fn halt(&mut self) -> bool {
        match self.thread.take() {
            Some((handle, stop)) => {
                stop.signal();
                let _ = handle.join();
                true
            }
            None => false,
        }
    }
}

impl Drop for RelayLoop {
    fn drop(&mut self) {
        self.halt();
    }
}

#[pymethods]
impl RelayLoop {
    #[new]
    #[pyo3(signature = (fd, *, plane=None, link=true, forward_to=None, sink=false, feedback=None,
                        feedback_every=16, capacity=1024, max_peers=4096, max_routes=65536,
                        data_rate=50_000.0, data_burst=5_000.0, rekey_after_messages=1<<28,
                        batch=64, max_datagram=65_507))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        fd: i32,
        plane: Option<PyRef<'_, DataPlane>>,
        link: bool,
        forward_to: Option<(String, u16)>,
        sink: bool,
        feedback: Option<(String, u16)>,
        feedback_every: u64,
        capacity: usize,
        max_peers: usize,
        max_routes: usize,
        data_rate: f64,
        data_burst: f64,
        rekey_after_messages: u64,
        batch: usize,
        max_datagram: usize,
    ) -> PyResult<Self> {
        let mode = match (plane, forward_to, sink) {
            (Some(plane), None, false) => Mode::Relay {
                plane: Arc::clone(&plane.inner),
                link,
                rekey_after_messages,
            },
            (None, Some((host, port)), false) => Mode::Forward {
                to: address(&host, port)?,
            },
            (None, None, true) => Mode::Sink {
                feedback: feedback.map(|(h, p)| address(&h, p)).transpose()?,
                every: feedback_every.max(1),
            },
            _ => {
                return Err(PyValueError::new_err(
                    "give exactly one of plane, forward_to, sink",
                ))
            }
        };
        if capacity == 0 || !(1..=1024).contains(&batch) || !(data_rate > 0.0 && data_burst >= 1.0)
        {
            return Err(PyValueError::new_err("loop parameters out of range"));
        }
        let mut tables = Tables::new(capacity, max_peers, max_routes, data_rate, data_burst);
        tables.max_datagram = max_datagram;
        Ok(RelayLoop {
            fd,
            mode,
            batch,
            tables: Arc::new(Mutex::new(tables)),
            events: Arc::new(EventFd::new().map_err(|e| PyOSError::new_err(e.to_string()))?),
            thread: None,
        })
    }

    /// Start the loop thread (on a fresh duplicate of the descriptor); no-op if running.
    fn start(&mut self) -> PyResult<()> {
        if self.thread.is_some() {
            return Ok(());
        }
        let sock = io::dup(self.fd).map_err(|e| PyOSError::new_err(e.to_string()))?;
        let stop = Arc::new(EventFd::new().map_err(|e| PyOSError::new_err(e.to_string()))?);
        let (mode, tables, events, batch) = (
            self.mode.clone(),
            Arc::clone(&self.tables),
            Arc::clone(&self.events),
            self.batch,
        );
        let thread_stop = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("hornet-data-loop".into())
            .spawn(move || dataloop::run(sock, mode, tables, thread_stop, events, batch))
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        self.thread = Some((handle, stop));
        Ok(())
    }

    /// Stop the thread and wait for it (the GIL released meanwhile); its descriptor is
    /// closed. True if it was running.
    fn stop(&mut self, py: Python<'_>) -> bool {
        let mut this = self.thread.take();
        let was = this.is_some();
        py.allow_threads(|| {
            if let Some((handle, stop)) = this.take() {
                stop.signal();
                let _ = handle.join();
            }
        });
        was
    }

    #[getter]
    fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|(h, _)| !h.is_finished())
    }

    /// A descriptor that is readable while events wait (`take` clears it).
    #[getter]
    fn wake_fd(&self) -> i32 {
        self.events.fd()
    }

    /// Up to `limit` events, oldest first, as tuples:
    /// (0, datagram, (host, port)) raw; (1, packet, (host, port)) opened;
    /// (2, packet, next_hop) forward; (3, circuit_id, reply_hop, message, s) deliver.
    fn take<'py>(&self, py: Python<'py>, limit: usize) -> PyResult<Bound<'py, PyList>> {
        self.events.clear();
        let taken: Vec<Event> = {
            let mut tables = lock(&self.tables);
            let n = limit.min(tables.events.len());
            tables.events.drain(..n).collect()
        };
        let list = PyList::empty(py);
        for event in taken {
            let item: Bound<'py, PyTuple> = match event {
                Event::Raw { datagram, source } => {
                    (0, PyBytes::new(py, &datagram), py_address(py, &source)?).into_pyobject(py)?
                }
                Event::Packet { packet, source } => {
                    (1, PyBytes::new(py, &packet), py_address(py, &source)?).into_pyobject(py)?
                }
                Event::Forward { packet, next_hop } => {
                    (2, PyBytes::new(py, &packet), PyBytes::new(py, &next_hop)).into_pyobject(py)?
                }
                Event::Deliver {
                    circuit_id,
                    reply_hop,
                    message,
                    s,
                } => (
                    3,
                    PyBytes::new(py, &circuit_id),
                    PyBytes::new(py, &reply_hop),
                    PyBytes::new(py, &message),
                    PyBytes::new(py, &s),
                )
                    .into_pyobject(py)?,
            };
            list.append(item)?;
        }
        Ok(list)
    }

    /// Give the loop the link sessions of the peer at (host, port): `send` = (session,
    /// seconds it may seal for) or None, `receive` = [(0 or 1, session, seconds)] newest
    /// first (0: opens DATA_FROM_INITIATOR). False if the peer table is full.
    #[pyo3(signature = (host, port, send, receive))]
    fn set_peer(
        &self,
        host: &str,
        port: u16,
        send: Option<(Bound<'_, LinkSession>, f64)>,
        receive: Vec<(usize, Bound<'_, LinkSession>, f64)>,
    ) -> PyResult<bool> {
        let addr = address(host, port)?;
        let send = send.map(|(s, remaining)| usable(&s, remaining));
        let mut lists: [Vec<Usable>; 2] = [Vec::new(), Vec::new()];
        for (index, session, remaining) in receive {
            if index > 1 {
                return Err(PyValueError::new_err("a receive list is 0 or 1"));
            }
            lists[index].push(usable(&session, remaining));
        }
        let mut tables = lock(&self.tables);
        let burst = tables.data_burst;
        if let Some(peer) = tables.peers.get_mut(&addr) {
            peer.send = send;
            peer.receive = lists;
            return Ok(true);
        }
        if tables.peers.len() >= tables.max_peers {
            return Ok(false);
        }
        tables.peers.insert(addr, Peer::new(send, lists, burst));
        Ok(true)
    }

    fn remove_peer(&self, host: &str, port: u16) -> PyResult<()> {
        let addr = address(host, port)?;
        lock(&self.tables).peers.remove(&addr);
        Ok(())
    }

    /// Replace the next-hop table: [(node_id, host, port)]. False if it is too long.
    fn set_routes(&self, routes: Vec<(Vec<u8>, String, u16)>) -> PyResult<bool> {
        let mut table = std::collections::HashMap::with_capacity(routes.len());
        for (node_id, host, port) in routes {
            let id: [u8; NODE_ID_LEN] = node_id
                .as_slice()
                .try_into()
                .map_err(|_| PyValueError::new_err("a node id is 8 bytes"))?;
            table.insert(id, address(&host, port)?);
        }
        let mut tables = lock(&self.tables);
        if table.len() > tables.max_routes {
            return Ok(false);
        }
        tables.routes = table;
        Ok(true)
    }

    /// The peers that sent DATA through the loop since the last call.
    fn take_active(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        let mut tables = lock(&self.tables);
        let mut out = Vec::new();
        for (addr, peer) in tables.peers.iter_mut() {
            if std::mem::take(&mut peer.active) {
                out.push(py_address(py, addr)?);
            }
        }
        Ok(out)
    }

    /// Counters: received, forwarded, dropped (by reason), queued, peers, routes.
    fn statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let tables = lock(&self.tables);
        let c = &tables.counters;
        let out = PyDict::new(py);
        out.set_item("received", c.received)?;
        out.set_item("forwarded", c.forwarded)?;
        let dropped = PyDict::new(py);
        for (reason, n) in &c.dropped {
            dropped.set_item(*reason, *n)?;
        }
        out.set_item("dropped", dropped)?;
        out.set_item("queued", tables.events.len())?;
        out.set_item("peers", tables.peers.len())?;
        out.set_item("routes", tables.routes.len())?;
        Ok(out)
    }

    /// A sink's figures since the last call, which resets them: (datagrams, bytes,
    /// seconds from the first arrival to the last).
    fn take_sink_figures(&self) -> (u64, u64, f64) {
        let mut tables = lock(&self.tables);
        let c = &mut tables.counters;
        let seconds = match (c.first, c.last) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let figures = (c.received, c.bytes, seconds);
        c.received = 0;
        c.bytes = 0;
        c.first = None;
        c.last = None;
        figures
    }

    fn __repr__(&self) -> String {
        format!("RelayLoop(fd={}, running={})", self.fd, self.running())
    }
}

/// Send each of `datagrams` to (host, port) with sendmmsg on `fd`, in batches of up to
/// 64, waiting briefly when the send buffer is full; returns how many were handed over.
#[pyfunction]
pub fn send_datagrams(
    py: Python<'_>,
    fd: i32,
    host: &str,
    port: u16,
    datagrams: Vec<Bound<'_, PyBytes>>,
) -> PyResult<usize> {
    let to = address(host, port)?;
    // Copied out while the GIL is held (a `Vec<u8>` argument would be extracted one
    // Python int per byte).
    let items: Vec<(Vec<u8>, SocketAddr)> = datagrams
        .iter()
        .map(|d| (d.as_bytes().to_vec(), to))
        .collect();
    Ok(py.allow_threads(|| {
        items
            .chunks(64)
            .map(|chunk| io::send_batch(fd, chunk, 50))
            .sum()
    }))
}
