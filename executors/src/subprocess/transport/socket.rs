//! The socket between a pool and one worker: a `SOCK_SEQPACKET` pair that this crate reads
//! itself, because the bytes a worker sends are untrusted.
//!
//! A worker runs untrusted input, so code that took it over can write anything into its end:
//! packets of any size, packets with descriptors attached, packets at any time. ipc-channel's
//! receive trusts its peer (it allocates what a header declares and keeps descriptors it was
//! sent), so the pool does not read worker bytes through it. Here every receive lands in a
//! buffer of at most [`MAX_PACKET`] bytes: a longer packet is truncated by the kernel and
//! reported as garbled, and any descriptor that came with a packet is closed at once and the
//! packet reported as garbled too. ipc-channel still carries the handshake, which comes before
//! the worker has run any task: see `launch.rs`.
//!
//! A receive or a send that would block waits on the socket and, on the parent's side, on the
//! worker's pidfd too: a worker's death ends the wait even while a process the worker forked
//! still holds its end of the socket.
//!
//! Sequenced packets keep message boundaries, so a frame (see `frame.rs`) is sent as packets of
//! at most [`MAX_PACKET`] bytes and no length is ever read across two packets.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The largest packet either side sends: 64 KiB, well within the default socket buffer
/// (`net.core.wmem_default`, 208 KiB), so a send never fails for its size.
pub(crate) const MAX_PACKET: usize = 64 << 10;

/// Room for every descriptor one packet can carry (the kernel's limit is 253), so that the
/// kernel installs them all here, where they are closed off the receiving thread, rather than
/// dropping the excess in it.
const CONTROL_BYTES: usize = 1088;

/// Why a socket operation did not complete.
#[derive(Debug)]
pub(crate) enum SocketError {
    /// The other end is closed, or the peer process exited.
    Closed,
    /// The other side sent something no honest peer sends.
    Garbled(&'static str),
    /// The socket itself failed.
    Io(io::Error),
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketError::Closed => f.write_str("the other side closed the socket or exited"),
            SocketError::Garbled(what) => write!(f, "the other side sent {what}"),
            SocketError::Io(e) => write!(f, "the socket failed: {e}"),
        }
    }
}

/// One end of a worker's socket.
#[derive(Debug)]
pub(crate) struct Socket(OwnedFd);

impl Socket {
    /// A connected pair, both ends close-on-exec: the parent's, and the one a worker inherits.
    pub(crate) fn pair() -> io::Result<(Socket, Socket)> {
        let mut fds = [-1; 2];
        // SAFETY: `socketpair` writes two descriptors into `fds`, a live local array of two.
        let result = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned by nothing else.
        Ok(unsafe {
            (
                Socket(OwnedFd::from_raw_fd(fds[0])),
                Socket(OwnedFd::from_raw_fd(fds[1])),
            )
        })
    }

    /// Worker: adopts the end the parent left at descriptor `fd`, after checking that it is a
    /// sequenced-packet socket, and makes it close-on-exec, so processes a task starts do not
    /// inherit it.
    pub(crate) fn adopt(fd: RawFd) -> io::Result<Socket> {
        let mut kind: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `getsockopt` writes at most `len` bytes into `kind`, a live local of that
        // size, and `len` back; on a descriptor that is not open or not a socket it fails.
        let result = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&raw mut kind).cast(),
                &mut len,
            )
        };
        if fd < 0 || result < 0 || kind != libc::SOCK_SEQPACKET {
            return Err(io::Error::other(format!(
                "descriptor {fd} is not the pool's socket"
            )));
        }
        // SAFETY: `fd` is an open socket (checked above) that the parent left to this process
        // for this purpose alone: nothing else in the process owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `fcntl(F_SETFD)` changes a flag of an open descriptor this socket owns.
        unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(Socket(owned))
    }

    /// The descriptor number in this process.
    pub(crate) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Says end-of-file to the other side: its receives return [`SocketError::Closed`] once
    /// it has read what was sent before.
    pub(crate) fn close_sending(&self) {
        // SAFETY: `shutdown` takes a descriptor this socket owns and a flag.
        unsafe { libc::shutdown(self.fd(), libc::SHUT_WR) };
    }

    /// Sends one packet of at most [`MAX_PACKET`] bytes, waiting while the socket is full
    /// unless `peer` (a pidfd) says the other process exited first.
    pub(crate) fn send(
        &self,
        packet: &[u8],
        peer: Option<BorrowedFd<'_>>,
    ) -> Result<(), SocketError> {
        debug_assert!(packet.len() <= MAX_PACKET);
        loop {
            // SAFETY: the kernel reads `packet.len()` bytes from `packet`, a live borrowed
            // slice; MSG_NOSIGNAL turns a closed peer into EPIPE instead of SIGPIPE.
            let sent = unsafe {
                libc::send(
                    self.fd(),
                    packet.as_ptr().cast(),
                    packet.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if sent >= 0 {
                return Ok(());
            }
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EAGAIN) => {
                    if !wait(self.fd(), libc::POLLOUT, peer)? {
                        return Err(SocketError::Closed);
                    }
                }
                Some(libc::EINTR) => {}
                Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN) => {
                    return Err(SocketError::Closed);
                }
                _ => return Err(SocketError::Io(error)),
            }
        }
    }

    /// Receives a packet into `into` (replacing its contents) if one is waiting; `Ok(false)`
    /// if none is.
    pub(crate) fn try_recv(&self, into: &mut Vec<u8>) -> Result<bool, SocketError> {
        into.clear();
        into.reserve(MAX_PACKET);
        let mut control = [0u64; CONTROL_BYTES / 8];
        let mut iov = libc::iovec {
            iov_base: into.as_mut_ptr().cast(),
            iov_len: MAX_PACKET,
        };
        // SAFETY: an all-zero `msghdr` is a valid empty one (null pointers, zero lengths).
        let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
        header.msg_iov = &mut iov;
        header.msg_iovlen = 1;
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = CONTROL_BYTES as _;
        let received = loop {
            // SAFETY: `header` points at `iov`, which describes `MAX_PACKET` bytes of spare
            // capacity of `into` (reserved above), and at `control`, `CONTROL_BYTES` bytes of a
            // live local (8-byte aligned, as `cmsghdr` needs); the kernel writes at most that
            // much into each.
            let n = unsafe {
                libc::recvmsg(
                    self.fd(),
                    &mut header,
                    libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
                )
            };
            if n >= 0 {
                break n as usize;
            }
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(false),
                Some(libc::EINTR) => {}
                Some(libc::ECONNRESET) => return Err(SocketError::Closed),
                _ => return Err(SocketError::Io(error)),
            }
        };
        let carried_descriptors = close_descriptors(&header);
        if carried_descriptors || header.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(SocketError::Garbled("a packet with descriptors attached"));
        }
        if header.msg_flags & libc::MSG_TRUNC != 0 {
            return Err(SocketError::Garbled(
                "a packet larger than the protocol allows",
            ));
        }
        if received == 0 {
            // End-of-file, or an empty packet, which nothing honest sends (frames are never
            // empty): after end-of-file the socket says the peer hung up.
            return Err(if self.peer_hung_up() {
                SocketError::Closed
            } else {
                SocketError::Garbled("an empty packet")
            });
        }
        // SAFETY: the kernel wrote `received` (at most `MAX_PACKET`, the capacity reserved
        // above) bytes into the spare capacity of `into`, starting at its beginning.
        unsafe { into.set_len(received) };
        Ok(true)
    }

    /// Whether the other end is closed for sending (or gone).
    fn peer_hung_up(&self) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        }];
        // SAFETY: `fds` is a live array of one initialised pollfd; a zero timeout never blocks.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
        ready > 0 && fds[0].revents & (libc::POLLRDHUP | libc::POLLHUP) != 0
    }

    /// Waits for a packet and receives it into `into`. `peer` is the other process's pidfd, if
    /// known: its exit ends the wait with [`SocketError::Closed`] once every packet it sent
    /// before is read, even if another process still holds its end of the socket.
    pub(crate) fn recv(
        &self,
        into: &mut Vec<u8>,
        peer: Option<BorrowedFd<'_>>,
    ) -> Result<(), SocketError> {
        loop {
            if self.try_recv(into)? {
                return Ok(());
            }
            if !wait(self.fd(), libc::POLLIN, peer)? {
                // The peer exited: a packet it sent just before is already queued.
                return match self.try_recv(into)? {
                    true => Ok(()),
                    false => Err(SocketError::Closed),
                };
            }
        }
    }
}

/// Closes every descriptor that came with a received packet; returns whether any control
/// message came at all. The closes happen on a thread of their own: closing the last copy of
/// a descriptor can block (a socket set to linger, a file whose file system flushes on close),
/// and a worker chooses what it sends.
fn close_descriptors(header: &libc::msghdr) -> bool {
    let mut any = false;
    let mut received = Vec::new();
    // SAFETY: `header` was filled in by `recvmsg`, so its control pointer and length describe
    // the control messages the kernel wrote into our buffer; CMSG_FIRSTHDR/CMSG_NXTHDR stay
    // within `msg_controllen`.
    let mut message = unsafe { libc::CMSG_FIRSTHDR(header) };
    while !message.is_null() {
        any = true;
        // SAFETY: `message` is a non-null control message header within the buffer (above).
        let cmsg = unsafe { &*message };
        if cmsg.cmsg_level == libc::SOL_SOCKET && cmsg.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: a zero-length CMSG_LEN is the header's own size, a constant.
            let data_len = cmsg.cmsg_len as usize - unsafe { libc::CMSG_LEN(0) } as usize;
            // SAFETY: CMSG_DATA points at `data_len` bytes of descriptors inside this message.
            let data = unsafe { libc::CMSG_DATA(message) };
            for index in 0..data_len / size_of::<RawFd>() {
                // SAFETY: reads the index-th descriptor within the message's data (bounded by
                // `data_len` above); the data may be unaligned, so it is read unaligned.
                let fd = unsafe { data.cast::<RawFd>().add(index).read_unaligned() };
                // SAFETY: the kernel just installed `fd` in this process for us (SCM_RIGHTS):
                // nothing else owns it, so this is its only owner and its only close.
                received.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR; returns null after the last message.
        message = unsafe { libc::CMSG_NXTHDR(header, message) };
    }
    if !received.is_empty() {
        let closer = std::thread::Builder::new().name("ythread-close".to_owned());
        // Should no thread start, they are closed here (the spawn's error drops them).
        let _ = closer.spawn(move || drop(received));
    }
    any
}

/// Waits until `fd` is ready for `events` (true), or `peer` becomes readable: the process it
/// refers to exited (false).
fn wait(
    fd: RawFd,
    events: libc::c_short,
    peer: Option<BorrowedFd<'_>>,
) -> Result<bool, SocketError> {
    let mut fds = [
        libc::pollfd {
            fd,
            events,
            revents: 0,
        },
        libc::pollfd {
            fd: peer.map_or(-1, |peer| peer.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is a live array of two initialised pollfds; a negative descriptor is
        // ignored by `poll`; both descriptors stay open for the call (borrowed).
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if ready >= 0 {
            // An error or hang-up on the socket is for the next send or receive to report.
            return Ok(fds[0].revents != 0 || fds[1].revents == 0);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(SocketError::Io(error));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_keep_their_boundaries_and_end_of_file_is_closed() {
        let (a, b) = Socket::pair().unwrap();
        a.send(b"one", None).unwrap();
        a.send(&[7; MAX_PACKET], None).unwrap();
        let mut into = Vec::new();
        b.recv(&mut into, None).unwrap();
        assert_eq!(into, b"one");
        b.recv(&mut into, None).unwrap();
        assert_eq!(into.len(), MAX_PACKET);
        assert!(!b.try_recv(&mut into).unwrap(), "nothing more waits");
        // An empty packet is no end-of-file.
        a.send(b"", None).unwrap();
        assert!(matches!(
            b.recv(&mut into, None),
            Err(SocketError::Garbled(_))
        ));
        // An empty packet is no end-of-file.
        a.send(b"", None).unwrap();
        assert!(matches!(
            b.recv(&mut into, None),
            Err(SocketError::Garbled(_))
        ));
        a.close_sending();
        assert!(matches!(b.recv(&mut into, None), Err(SocketError::Closed)));
        drop(b);
        assert!(matches!(a.send(b"x", None), Err(SocketError::Closed)));
    }

    #[test]
    fn oversized_packets_and_attached_descriptors_are_garbled_and_closed() {
        let (a, b) = Socket::pair().unwrap();
        // A packet past the limit, as a hostile peer could send it.
        let big = vec![1u8; MAX_PACKET + 1];
        // SAFETY: the kernel reads `big.len()` bytes from the live `big`.
        let sent = unsafe { libc::send(a.fd(), big.as_ptr().cast(), big.len(), 0) };
        assert_eq!(sent, big.len() as isize);
        let mut into = Vec::new();
        assert!(matches!(
            b.recv(&mut into, None),
            Err(SocketError::Garbled(_))
        ));

        // A packet with a descriptor attached: the receiver closes it (on a thread of its
        // own). Once every copy of `spare` is closed, its peer hears the hang-up.
        let (spare, other) = Socket::pair().unwrap();
        send_with_descriptor(&a, spare.fd());
        drop(spare);
        assert!(matches!(
            b.recv(&mut into, None),
            Err(SocketError::Garbled(_))
        ));
        let mut hang_up = [libc::pollfd {
            fd: other.fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        }];
        // SAFETY: one live, initialised pollfd; the wait is bounded (30 s).
        let ready = unsafe { libc::poll(hang_up.as_mut_ptr(), 1, 30_000) };
        assert_eq!(ready, 1, "the received descriptor was closed");
        // The socket still works for honest packets.
        a.send(b"ok", None).unwrap();
        b.recv(&mut into, None).unwrap();
        assert_eq!(into, b"ok");
    }

    fn send_with_descriptor(socket: &Socket, fd: RawFd) {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control = [0u64; 4];
        // SAFETY: an all-zero `msghdr` is a valid empty one.
        let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
        header.msg_iov = &mut iov;
        header.msg_iovlen = 1;
        header.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE computes a size from a constant.
        header.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as _;
        // SAFETY: the control buffer (32 bytes, aligned) holds one cmsghdr with one
        // descriptor; CMSG_FIRSTHDR/CMSG_DATA point inside it; `sendmsg` reads what `header`
        // describes, all live locals.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&header);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
            libc::CMSG_DATA(cmsg).cast::<RawFd>().write_unaligned(fd);
            assert_eq!(libc::sendmsg(socket.fd(), &header, 0), 1);
        }
    }
}
