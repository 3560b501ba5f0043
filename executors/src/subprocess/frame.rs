//! Frames: length-prefixed messages that travel in pieces of one socket packet each.
//!
//! ```text
//! frame = u64 LE body length ++ body        sent as messages of at most `max_piece()` bytes
//! ```
//!
//! ipc-channel splits a large message by itself, but it sends the later fragments over a side
//! channel whose receiving end the *sender* keeps open until the send completes. When the
//! receiver dies half-way through a large message (out of memory, killed at its deadline), the
//! sender blocks in `send` forever. A message of one packet goes to the peer's socket only, so
//! a send to a dead peer fails at once. The receiver joins the pieces in a buffer it keeps
//! between messages, so large payloads do not fault in fresh memory every time; a frame of one
//! piece (every small job and reply) is read in place, without a copy.

use std::fmt;
use std::time::Duration;

use ipc_channel::IpcError;
use ipc_channel::ipc::IpcBytesSender;
use ipc_channel::platform::OsIpcSender;

use super::receive::Receiver;

/// Bytes of the body-length prefix.
const LENGTH_PREFIX: usize = 8;

/// Joined-piece buffers above this size are not kept between frames.
const KEPT_BUFFER: usize = 4 << 20;

/// Starts a frame in `out` (cleared first); the caller appends the body, then [`seal`]s it.
pub(super) fn start(out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0; LENGTH_PREFIX]);
}

/// Writes the body length into a frame made by [`start`].
pub(super) fn seal(frame: &mut [u8]) {
    let body = (frame.len() - LENGTH_PREFIX) as u64;
    frame[..LENGTH_PREFIX].copy_from_slice(&body.to_le_bytes());
}

/// Sends a sealed frame in pieces of one packet each.
pub(super) fn send(to: &IpcBytesSender, frame: &[u8]) -> Result<(), Unsent> {
    let piece = OsIpcSender::get_max_fragment_size().max(LENGTH_PREFIX + 1);
    for (index, chunk) in frame.chunks(piece).enumerate() {
        to.send(chunk).map_err(|_| Unsent { partly: index > 0 })?;
    }
    Ok(())
}

/// A frame that could not be sent.
#[derive(Debug)]
pub(super) struct Unsent {
    /// Whether some pieces went out before the failure (the peer died while receiving).
    pub(super) partly: bool,
}

/// The body of the frame whose first piece is `first`: read in place if that is all of it,
/// otherwise joined in `joined` from the pieces that `next` receives.
pub(super) fn receive<'a>(
    first: &'a [u8],
    joined: &'a mut Vec<u8>,
    mut next: impl FnMut() -> Result<Vec<u8>, IpcError>,
) -> Result<&'a [u8], FrameError> {
    let prefix: [u8; LENGTH_PREFIX] = first
        .get(..LENGTH_PREFIX)
        .and_then(|p| p.try_into().ok())
        .ok_or(FrameError::Malformed("shorter than its length prefix"))?;
    let body_len = usize::try_from(u64::from_le_bytes(prefix))
        .map_err(|_| FrameError::Malformed("too large for this platform"))?;
    let body = &first[LENGTH_PREFIX..];
    if body.len() == body_len {
        return Ok(body);
    }
    if joined.capacity() > KEPT_BUFFER.max(body_len) {
        *joined = Vec::new();
    }
    joined.clear();
    joined.reserve(body_len);
    joined.extend_from_slice(body);
    while joined.len() < body_len {
        let piece = next().map_err(FrameError::Channel)?;
        if joined.len() + piece.len() > body_len {
            return Err(FrameError::Malformed("longer than its length prefix"));
        }
        joined.extend_from_slice(&piece);
    }
    Ok(joined)
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(super) enum FrameError {
    /// The channel failed, or the other side closed it (`IpcError::Disconnected`).
    Channel(IpcError),
    /// The pieces do not add up to a frame.
    Malformed(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Channel(e) => write!(f, "the channel failed: {e}"),
            FrameError::Malformed(what) => write!(f, "a frame {what}"),
        }
    }
}

/// The receiving end of a frame channel, with the buffers that [`receive`] needs.
pub(super) struct FrameReceiver {
    receiver: Receiver,
    first: Vec<u8>,
    joined: Vec<u8>,
    /// Whether the last body is in `first` (one piece) rather than `joined`.
    last_in_place: bool,
}

impl FrameReceiver {
    pub(super) fn new(receiver: Receiver) -> Self {
        FrameReceiver {
            receiver,
            first: Vec::new(),
            joined: Vec::new(),
            last_in_place: true,
        }
    }

    /// Waits for the next frame and returns its body.
    pub(super) fn recv(&mut self) -> Result<&[u8], FrameError> {
        self.recv_lending(Duration::ZERO).map(|(body, _)| body)
    }

    /// [`recv`](Self::recv) of a frame expected after about `expected` (see
    /// [`Receiver::recv_expecting`]), lending the channel too, for an exchange of
    /// single-piece messages while the body is still in use.
    pub(super) fn recv_lending(
        &mut self,
        expected: Duration,
    ) -> Result<(&[u8], &mut Receiver), FrameError> {
        self.first = if expected.is_zero() {
            self.receiver.recv()
        } else {
            self.receiver.recv_expecting(expected)
        }
        .map_err(FrameError::Channel)?;
        let receiver = &mut self.receiver;
        let body = receive(&self.first, &mut self.joined, || receiver.recv())?;
        self.last_in_place = std::ptr::eq(body.as_ptr(), self.first[LENGTH_PREFIX..].as_ptr());
        Ok((body, receiver))
    }

    /// The body of the last frame [`recv`](Self::recv) returned (empty before the first).
    pub(super) fn last(&self) -> &[u8] {
        if self.last_in_place {
            self.first.get(LENGTH_PREFIX..).unwrap_or_default()
        } else {
            &self.joined
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `body`, cuts it into `piece`-sized messages and joins them again.
    fn round_trip(body: &[u8], piece: usize, joined: &mut Vec<u8>) -> Vec<u8> {
        let mut frame = Vec::new();
        start(&mut frame);
        frame.extend_from_slice(body);
        seal(&mut frame);
        let mut pieces = frame.chunks(piece).map(<[u8]>::to_vec);
        let first = pieces.next().unwrap();
        receive(&first, joined, || Ok(pieces.next().unwrap()))
            .unwrap()
            .to_vec()
    }

    #[test]
    fn bodies_survive_any_cut_into_pieces() {
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut joined = Vec::new();
        for piece in [9, 1000, 65_536, 1 << 20] {
            assert!(
                round_trip(&body, piece, &mut joined) == body,
                "pieces of {piece}"
            );
        }
        assert_eq!(round_trip(&[], 9, &mut joined), Vec::<u8>::new());
    }

    #[test]
    fn a_frame_of_one_piece_is_read_in_place() {
        let mut frame = Vec::new();
        start(&mut frame);
        frame.extend_from_slice(b"body");
        seal(&mut frame);
        let mut joined = Vec::new();
        let body = receive(&frame, &mut joined, || unreachable!()).unwrap();
        assert_eq!(body, b"body");
        assert!(std::ptr::eq(body, &frame[LENGTH_PREFIX..]));
    }

    #[test]
    fn pieces_that_do_not_add_up_are_rejected() {
        let mut joined = Vec::new();
        let short = receive(&[1, 2], &mut joined, || unreachable!());
        assert!(matches!(short, Err(FrameError::Malformed(_))));
        let mut frame = 4u64.to_le_bytes().to_vec();
        frame.extend([1, 2]);
        let too_long = receive(&frame, &mut joined, || Ok(vec![3, 4, 5]));
        assert!(matches!(too_long, Err(FrameError::Malformed(_))));
        let cut_off = receive(&frame, &mut joined, || Err(IpcError::Disconnected));
        assert!(matches!(
            cut_off,
            Err(FrameError::Channel(IpcError::Disconnected))
        ));
    }
}
