//! The floor that payload round trips are measured against: the same bytes echoed by a second
//! process over a Unix socket pair, length-prefixed, one write per message each way.
//!
//! The peer is the calling program started again with [`PEER_ENV`] set: its `main` must call
//! [`serve_if_peer`] early (after `ythread_executors::init`), which echoes until the socket
//! closes and then tells `main` to return. Shared by `benches/subprocess.rs` and the strategy
//! comparison, so both measure against one floor.

use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

/// Set in the environment of the echo peer.
pub const PEER_ENV: &str = "YTHREAD_ECHO_FLOOR_PEER";

/// In the echo peer (started by [`EchoFloor::start`]): echoes messages on stdin's socket until
/// it closes and returns `true`; anywhere else returns `false` at once.
pub fn serve_if_peer() -> bool {
    if std::env::var_os(PEER_ENV).is_none() {
        return false;
    }
    if let Ok(socket) = io::stdin().as_fd().try_clone_to_owned() {
        let socket = UnixStream::from(socket);
        if let Ok(reader) = socket.try_clone() {
            let mut reader = BufReader::with_capacity(64 << 10, reader);
            let mut writer = socket;
            let (mut message, mut packet) = (Vec::new(), Vec::new());
            while read_message(&mut reader, &mut message).is_ok() {
                if write_message(&mut writer, &mut packet, &message).is_err() {
                    break;
                }
            }
        }
    }
    true
}

/// The caller's side: an echo peer and the socket to it. Dropping it stops the peer.
#[derive(Debug)]
pub struct EchoFloor {
    peer: Child,
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    packet: Vec<u8>,
    reply: Vec<u8>,
}

impl EchoFloor {
    /// Starts this program again as the echo peer.
    ///
    /// # Errors
    /// If the socket pair or the process cannot be made.
    pub fn start() -> io::Result<EchoFloor> {
        let (ours, theirs) = UnixStream::pair()?;
        let peer = Command::new(std::env::current_exe()?)
            .env(PEER_ENV, "1")
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .spawn()?;
        Ok(EchoFloor {
            peer,
            reader: BufReader::with_capacity(64 << 10, ours.try_clone()?),
            writer: ours,
            packet: Vec::new(),
            reply: Vec::new(),
        })
    }

    /// Sends `message` and waits for its echo; returns the echo's length.
    ///
    /// # Errors
    /// If the peer is gone or the socket fails.
    pub fn round_trip(&mut self, message: &[u8]) -> io::Result<usize> {
        write_message(&mut self.writer, &mut self.packet, message)?;
        read_message(&mut self.reader, &mut self.reply)?;
        Ok(self.reply.len())
    }
}

impl Drop for EchoFloor {
    fn drop(&mut self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
        let _ = self.peer.wait();
    }
}

fn write_message(to: &mut UnixStream, packet: &mut Vec<u8>, message: &[u8]) -> io::Result<()> {
    let len = u32::try_from(message.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a message over 4 GiB"))?;
    packet.clear();
    packet.extend_from_slice(&len.to_le_bytes());
    packet.extend_from_slice(message);
    to.write_all(packet)
}

fn read_message(from: &mut impl Read, into: &mut Vec<u8>) -> io::Result<()> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    into.resize(u32::from_le_bytes(len) as usize, 0);
    from.read_exact(into)
}
