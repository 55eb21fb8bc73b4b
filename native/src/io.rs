//! The system-call shim of the native data loop: recvmmsg / sendmmsg on a UDP socket,
//! poll, eventfd and dup. This is the only module with `unsafe` code; every block says
//! why it is sound. Everything above it (`dataloop`) is safe Rust.
//!
//! Invariants the blocks rely on: every pointer handed to the kernel points into a
//! buffer owned by the `RecvBatch` / local arrays of the calling function, which outlive
//! the call; every length handed with a pointer is that buffer's length; the kernel
//! writes at most that many bytes. File descriptors are `OwnedFd`s, closed exactly once.

#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Largest datagram a slot holds; longer ones arrive truncated and are refused.
pub const SLOT: usize = 2048;

/// A duplicate of `fd` (same socket, own descriptor), closed when dropped.
pub fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: dup only reads the integer; it returns a new descriptor or -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// A non-blocking eventfd: `signal` makes it readable, `clear` drains it.
pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes two integers and returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one`, a live local; a full counter (EAGAIN)
        // is already readable, which is all a signal means.
        unsafe { libc::write(self.fd(), (&one as *const u64).cast(), 8) };
    }

    pub fn clear(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads at most 8 bytes into `value`, a live local of 8 bytes.
        unsafe { libc::read(self.fd(), (&mut value as *mut u64).cast(), 8) };
    }
}

/// Wait until `sock` is readable (true) or `wake` is signalled (false).
pub fn wait_readable(sock: RawFd, wake: RawFd) -> bool {
    let mut fds = [
        libc::pollfd {
            fd: sock,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is a live local array of 2 pollfds, and 2 is its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return fds[1].revents == 0;
    }
}

/// Wait up to `timeout_ms` for room in `sock`'s send buffer.
pub fn wait_writable(sock: RawFd, timeout_ms: i32) -> bool {
    let mut fd = libc::pollfd {
        fd: sock,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: `fd` is one live local pollfd, and 1 is the count.
    let n = unsafe { libc::poll(&mut fd, 1, timeout_ms) };
    n > 0 && fd.revents & libc::POLLOUT != 0
}

fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the kernel wrote a sockaddr_in, which the
            // storage is large enough and aligned for.
            let sin: &libc::sockaddr_in =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Receive buffers for one recvmmsg call: `n` slots of `SLOT` bytes and their sources.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
    truncated: Vec<bool>,
    count: usize,
}

impl RecvBatch {
    pub fn new(n: usize) -> Self {
        RecvBatch {
            bufs: vec![0u8; n * SLOT],
            // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
            addrs: vec![unsafe { zeroed() }; n],
            lens: vec![0; n],
            truncated: vec![false; n],
            count: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Datagram `i`: its bytes (None if it was longer than a slot) and its source.
    pub fn get(&self, i: usize) -> (Option<&[u8]>, Option<SocketAddr>) {
        let data = &self.bufs[i * SLOT..i * SLOT + self.lens[i]];
        let data = if self.truncated[i] { None } else { Some(data) };
        (data, from_sockaddr(&self.addrs[i]))
    }

    /// One recvmmsg, non-blocking: the datagrams waiting now, up to the batch size.
    pub fn receive(&mut self, sock: RawFd) -> io::Result<usize> {
        let n = self.lens.len();
        let mut iovs: Vec<libc::iovec> = self
            .bufs
            .chunks_exact_mut(SLOT)
            .map(|slot| libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: SLOT,
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(n);
        for (iov, addr) in iovs.iter_mut().zip(self.addrs.iter_mut()) {
            // SAFETY: mmsghdr is plain old data; all zeroes is a valid value.
            let mut msg: libc::mmsghdr = unsafe { zeroed() };
            msg.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            msg.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msg.msg_hdr.msg_iov = iov;
            msg.msg_hdr.msg_iovlen = 1;
            msgs.push(msg);
        }
        // SAFETY: `msgs` holds n headers, each naming one live SLOT-byte slot of
        // `self.bufs` and one live sockaddr_storage of `self.addrs` with their true
        // sizes; all outlive the call, and the kernel writes within those sizes.
        let got = unsafe {
            libc::recvmmsg(
                sock,
                msgs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        let got = got as usize;
        for (i, msg) in msgs.iter().take(got).enumerate() {
            self.lens[i] = (msg.msg_len as usize).min(SLOT);
            self.truncated[i] = msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        self.count = got;
        Ok(got)
    }
}

/// Send `datagrams` (bytes, destination) with sendmmsg, waiting up to `wait_ms` for
/// buffer room when the socket's send buffer is full. Returns how many left; the rest
/// are loss, as on any datagram network.
pub fn send_batch(sock: RawFd, datagrams: &[(Vec<u8>, SocketAddr)], wait_ms: i32) -> usize {
    if datagrams.is_empty() {
        return 0;
    }
    let mut names: Vec<(libc::sockaddr_storage, libc::socklen_t)> = datagrams
        .iter()
        .map(|(_, addr)| to_sockaddr(addr))
        .collect();
    let mut iovs: Vec<libc::iovec> = datagrams
        .iter()
        .map(|(data, _)| libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(datagrams.len());
    for (iov, (name, len)) in iovs.iter_mut().zip(names.iter_mut()) {
        // SAFETY: mmsghdr is plain old data; all zeroes is a valid value.
        let mut msg: libc::mmsghdr = unsafe { zeroed() };
        msg.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
        msg.msg_hdr.msg_namelen = *len;
        msg.msg_hdr.msg_iov = iov;
        msg.msg_hdr.msg_iovlen = 1;
        msgs.push(msg);
    }
    let mut sent = 0;
    while sent < msgs.len() {
        let rest = &mut msgs[sent..];
        // SAFETY: every header names one live datagram buffer of `datagrams` (the
        // kernel only reads it) and one live sockaddr of `names`, with their true
        // lengths; all outlive the call.
        let n = unsafe {
            libc::sendmmsg(
                sock,
                rest.as_mut_ptr(),
                rest.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            sent += n as usize;
            continue;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => {
                if !wait_writable(sock, wait_ms) {
                    return sent;
                }
            }
            // A refused or failed datagram (ICMP error of an earlier send, no route):
            // skip it, as the Python socket counts such a send as loss.
            _ => sent += 1,
        }
    }
    sent
}
