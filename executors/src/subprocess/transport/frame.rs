//! Frames: length-prefixed, sequence-numbered messages that travel in packets of at most
//! [`MAX_PACKET`] bytes.
//!
//! ```text
//! frame = u64 LE body length ++ u64 LE job sequence number ++ body
//! ```
//!
//! The receiver joins the packets of a frame in a buffer it keeps between frames, so large
//! frames do not fault in fresh memory every time; a frame of one packet (every small job and
//! reply) is read in place, without a copy.
//!
//! The parent trusts nothing a worker sends. A frame's declared length is checked against the
//! receiver's limit (the pool's `max_payload` plus [`HEADROOM`]) before anything is read, the
//! joined buffer grows only as packets arrive (a lying length cannot make the parent reserve
//! memory), and a frame whose packets add up to more or less than its length is malformed.
//! Every frame carries the sequence number of the job it belongs to: the parent numbers its
//! jobs and refuses a frame of another job (a second reply, a reply sent while idle), so a
//! reply is never taken for a later job's. The worker answers with the number of the last
//! frame it received.

use std::fmt;
use std::time::Duration;

use super::receive::Receiver;
use super::socket::{MAX_PACKET, SocketError};

/// Bytes of the header: the body length, then the sequence number.
pub(crate) const HEADER: usize = 16;

/// How much longer than `max_payload` a frame may be: room for a job's or a reply's own
/// fields (task name, tags, gaps, an error's text) around the payload.
pub(crate) const HEADROOM: usize = 64 << 10;

/// Joined-packet buffers above this size are not kept between frames.
const KEPT_BUFFER: usize = 4 << 20;

/// Starts a frame in `out` (cleared first); the caller appends the body, then [`seal`]s it.
pub(crate) fn start(out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0; HEADER]);
}

/// Writes the body length into a frame made by [`start`]; the sequence number is written
/// when it is sent.
pub(crate) fn seal(frame: &mut [u8]) {
    let body = (frame.len() - HEADER) as u64;
    frame[..8].copy_from_slice(&body.to_le_bytes());
}

/// A frame that could not be sent.
#[derive(Debug)]
pub(crate) struct Unsent {
    /// Whether some packets went out before the failure (the peer died while receiving).
    pub(crate) partly: bool,
}

/// The body of the frame whose first packet is `first`, and its sequence number: read in place
/// if that is all of it, otherwise joined in `joined` from the packets that `next` receives.
/// A body longer than `limit` is refused before anything is joined.
pub(crate) fn receive<'a>(
    first: &'a [u8],
    joined: &'a mut Vec<u8>,
    limit: usize,
    mut next: impl FnMut(&mut Vec<u8>) -> Result<(), SocketError>,
) -> Result<(u64, &'a [u8]), FrameError> {
    let (declared, seq, body) = split_header(first)?;
    let body_len = usize::try_from(declared)
        .ok()
        .filter(|&len| len <= limit)
        .ok_or(FrameError::Malformed("longer than the protocol allows"))?;
    if body.len() == body_len {
        return Ok((seq, body));
    }
    if body.len() > body_len {
        return Err(FrameError::Malformed("longer than its length prefix"));
    }
    // Every packet but a frame's last is full: a frame cannot be trickled in tiny packets.
    if first.len() != MAX_PACKET {
        return Err(FrameError::Malformed(
            "continued after a packet that is not full",
        ));
    }
    if joined.capacity() > KEPT_BUFFER {
        *joined = Vec::new();
    }
    joined.clear();
    joined.extend_from_slice(body);
    let mut piece = Vec::new();
    while joined.len() < body_len {
        next(&mut piece).map_err(FrameError::Channel)?;
        if joined.len() + piece.len() > body_len {
            return Err(FrameError::Malformed("longer than its length prefix"));
        }
        joined.extend_from_slice(&piece);
        if joined.len() < body_len && piece.len() != MAX_PACKET {
            return Err(FrameError::Malformed(
                "continued after a packet that is not full",
            ));
        }
    }
    Ok((seq, joined))
}

/// A first packet's declared body length, sequence number, and the body bytes it holds.
fn split_header(first: &[u8]) -> Result<(u64, u64, &[u8]), FrameError> {
    let (header, body) = first
        .split_first_chunk::<HEADER>()
        .ok_or(FrameError::Malformed("shorter than its header"))?;
    let (declared, seq) = header.split_at(8);
    let declared = u64::from_le_bytes(declared.try_into().expect("8 bytes"));
    let seq = u64::from_le_bytes(seq.try_into().expect("8 bytes"));
    Ok((declared, seq, body))
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The socket failed, the other side closed it, or it sent what no honest peer sends.
    Channel(SocketError),
    /// The packets do not add up to a frame, or the frame is not the one expected.
    Malformed(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Channel(e) => e.fmt(f),
            FrameError::Malformed(what) => write!(f, "a frame {what}"),
        }
    }
}

impl FrameError {
    /// Whether the other side broke the protocol (rather than went away).
    pub(crate) fn is_garbled(&self) -> bool {
        matches!(
            self,
            FrameError::Malformed(_) | FrameError::Channel(SocketError::Garbled(_))
        )
    }
}

/// Which side of the socket this is, for sequence numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The pool: numbers its jobs and accepts only frames of the current one.
    Parent,
    /// A worker: answers with the number of the last frame it received.
    Worker,
}

/// The sending half of a socket and its sequence number: what an exchange of small messages
/// needs while the body of the frame that started it is still in use.
pub(crate) struct Wire {
    receiver: Receiver,
    side: Side,
    seq: u64,
    /// For the packets of small messages.
    packet: Vec<u8>,
}

impl Wire {
    /// Sends a sealed frame in packets of at most [`MAX_PACKET`] bytes, stamped with the
    /// current sequence number.
    pub(crate) fn send(&mut self, frame: &mut [u8]) -> Result<(), Unsent> {
        frame[8..HEADER].copy_from_slice(&self.seq.to_le_bytes());
        for (index, chunk) in frame.chunks(MAX_PACKET).enumerate() {
            self.receiver
                .send(chunk)
                .map_err(|_| Unsent { partly: index > 0 })?;
        }
        Ok(())
    }

    /// Says end-of-file to the other side.
    pub(crate) fn close(&self) {
        self.receiver.socket().close_sending();
    }

    /// Receives a frame of one packet, expected after about `expected`, and returns its body.
    pub(crate) fn recv_small(&mut self, expected: Duration) -> Result<&[u8], FrameError> {
        self.receiver
            .recv_expecting(expected, &mut self.packet)
            .map_err(FrameError::Channel)?;
        let (declared, seq, body) = split_header(&self.packet)?;
        if declared != body.len() as u64 {
            return Err(FrameError::Malformed(
                "of a small message that is not one packet",
            ));
        }
        check_seq(self.side, &mut self.seq, seq)?;
        Ok(body)
    }
}

/// Parent: the frame must belong to the current job. Worker: answer with its number.
fn check_seq(side: Side, current: &mut u64, seq: u64) -> Result<(), FrameError> {
    match side {
        Side::Worker => *current = seq,
        Side::Parent if seq != *current => {
            return Err(FrameError::Malformed(
                "of another job (a stale or unsolicited reply)",
            ));
        }
        Side::Parent => {}
    }
    Ok(())
}

/// One end of a worker's socket, framed: [`Wire`] and the buffers that [`receive`] needs.
pub(crate) struct FrameReceiver {
    wire: Wire,
    /// The largest body accepted.
    limit: usize,
    first: Vec<u8>,
    joined: Vec<u8>,
    /// Whether the last body is in `first` (one packet) rather than `joined`.
    last_in_place: bool,
}

impl FrameReceiver {
    /// Frames on `receiver`, for `side`, accepting bodies of at most `limit` bytes.
    pub(crate) fn new(receiver: Receiver, side: Side, limit: usize) -> Self {
        FrameReceiver {
            wire: Wire {
                receiver,
                side,
                seq: 0,
                packet: Vec::new(),
            },
            limit,
            first: Vec::new(),
            joined: Vec::new(),
            last_in_place: true,
        }
    }

    /// The sending half.
    pub(crate) fn wire(&mut self) -> &mut Wire {
        &mut self.wire
    }

    /// Parent: starts the next job, whose frames carry a new sequence number. Anything the
    /// worker sent since the last job ended is a frame no job asked for: an error, and the
    /// worker must not get the job.
    pub(crate) fn next_job(&mut self) -> Result<(), FrameError> {
        debug_assert_eq!(self.wire.side, Side::Parent);
        self.wire.seq += 1;
        match self.wire.receiver.try_recv(&mut self.wire.packet) {
            Ok(false) => Ok(()),
            Ok(true) => Err(FrameError::Malformed("sent while no job was running")),
            Err(e) => Err(FrameError::Channel(e)),
        }
    }

    /// Waits for the next frame and returns its body.
    pub(crate) fn recv(&mut self) -> Result<&[u8], FrameError> {
        self.recv_lending(Duration::ZERO).map(|(body, _)| body)
    }

    /// [`recv`](Self::recv) of a frame expected after about `expected` (see
    /// [`Receiver::recv_expecting`]), lending the wire too, for an exchange of small messages
    /// while the body is still in use.
    pub(crate) fn recv_lending(
        &mut self,
        expected: Duration,
    ) -> Result<(&[u8], &mut Wire), FrameError> {
        let wire = &mut self.wire;
        if expected.is_zero() {
            wire.receiver.recv(&mut self.first)
        } else {
            wire.receiver.recv_expecting(expected, &mut self.first)
        }
        .map_err(FrameError::Channel)?;
        let receiver = &mut wire.receiver;
        let (seq, body) = receive(&self.first, &mut self.joined, self.limit, |piece| {
            receiver.recv(piece)
        })?;
        check_seq(wire.side, &mut wire.seq, seq)?;
        self.last_in_place = std::ptr::eq(body.as_ptr(), self.first[HEADER..].as_ptr());
        Ok((body, wire))
    }

    /// The body of the last frame [`recv`](Self::recv) returned (empty before the first).
    pub(crate) fn last(&self) -> &[u8] {
        if self.last_in_place {
            self.first.get(HEADER..).unwrap_or_default()
        } else {
            &self.joined
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `body`, cuts it into `piece`-sized packets and joins them again.
    fn round_trip(body: &[u8], piece: usize, joined: &mut Vec<u8>) -> Vec<u8> {
        let mut frame = Vec::new();
        start(&mut frame);
        frame.extend_from_slice(body);
        seal(&mut frame);
        let mut pieces = frame.chunks(piece).map(<[u8]>::to_vec);
        let first = pieces.next().unwrap();
        let next = |into: &mut Vec<u8>| {
            *into = pieces.next().unwrap();
            Ok(())
        };
        receive(&first, joined, usize::MAX, next)
            .unwrap()
            .1
            .to_vec()
    }

    #[test]
    fn bodies_of_any_length_survive_their_packets() {
        let mut joined = Vec::new();
        let one = MAX_PACKET - HEADER;
        for len in [0, 1, one - 1, one, one + 1, 3 * MAX_PACKET + 5] {
            let body: Vec<u8> = (0..len as u32).map(|i| (i % 251) as u8).collect();
            assert!(
                round_trip(&body, MAX_PACKET, &mut joined) == body,
                "a body of {len}"
            );
        }
    }

    #[test]
    fn a_frame_continued_after_a_packet_that_is_not_full_is_refused() {
        let body = vec![7u8; 3 * MAX_PACKET];
        let mut joined = Vec::new();
        let mut frame = Vec::new();
        start(&mut frame);
        frame.extend_from_slice(&body);
        seal(&mut frame);
        // A full first packet, then a continuation one byte short of full.
        let mut rest = frame[MAX_PACKET..]
            .chunks(MAX_PACKET - 1)
            .map(<[u8]>::to_vec);
        let trickled = receive(&frame[..MAX_PACKET], &mut joined, usize::MAX, |into| {
            *into = rest.next().unwrap();
            Ok(())
        });
        assert!(matches!(trickled, Err(FrameError::Malformed(_))));
        // A short first packet of a longer frame.
        let short_first = receive(&frame[..100], &mut joined, usize::MAX, |_| unreachable!());
        assert!(matches!(short_first, Err(FrameError::Malformed(_))));
    }

    #[test]
    fn a_frame_of_one_packet_is_read_in_place() {
        let mut frame = Vec::new();
        start(&mut frame);
        frame.extend_from_slice(b"body");
        seal(&mut frame);
        let mut joined = Vec::new();
        let (_, body) = receive(&frame, &mut joined, 100, |_| unreachable!()).unwrap();
        assert_eq!(body, b"body");
        assert!(std::ptr::eq(body, &frame[HEADER..]));
    }

    /// A frame header that declares `len` bytes, then `body`.
    fn lying(len: u64, body: &[u8]) -> Vec<u8> {
        let mut frame = len.to_le_bytes().to_vec();
        frame.extend_from_slice(&[0; 8]);
        frame.extend_from_slice(body);
        frame
    }

    #[test]
    fn packets_that_do_not_add_up_are_rejected() {
        let mut joined = Vec::new();
        let short = receive(&[1, 2], &mut joined, 100, |_| unreachable!());
        assert!(matches!(short, Err(FrameError::Malformed(_))));
        let body = MAX_PACKET - HEADER;
        let frame = lying(body as u64 + 2, &vec![1; body]);
        let too_long = receive(&frame, &mut joined, MAX_PACKET, |into| {
            *into = vec![3, 4, 5];
            Ok(())
        });
        assert!(matches!(too_long, Err(FrameError::Malformed(_))));
        let cut_off = receive(&frame, &mut joined, MAX_PACKET, |_| {
            Err(SocketError::Closed)
        });
        assert!(matches!(
            cut_off,
            Err(FrameError::Channel(SocketError::Closed))
        ));
        // One packet longer than its prefix says.
        let frame = lying(1, &[1, 2]);
        let longer = receive(&frame, &mut joined, 100, |_| unreachable!());
        assert!(matches!(longer, Err(FrameError::Malformed(_))));
    }

    #[test]
    fn a_declared_length_past_the_limit_is_refused_before_any_memory_is_reserved() {
        let mut joined = Vec::new();
        for declared in [101, 1 << 45, u64::MAX] {
            let frame = lying(declared, &[1, 2]);
            let refused = receive(&frame, &mut joined, 100, |_| unreachable!());
            assert!(
                matches!(refused, Err(FrameError::Malformed(_))),
                "{declared}"
            );
        }
        assert_eq!(joined.capacity(), 0, "nothing was reserved");
        // Within the limit, the buffer grows only as packets arrive.
        let frame = lying(100, &[1, 2]);
        let cut_off = receive(&frame, &mut joined, 100, |_| Err(SocketError::Closed));
        assert!(cut_off.is_err());
        assert!(joined.capacity() < 100, "{}", joined.capacity());
    }

    #[test]
    fn the_parent_refuses_frames_of_another_job() {
        use crate::subprocess::transport::receive::Receiver;
        use crate::subprocess::transport::socket::Socket;

        let (parent, worker) = Socket::pair().unwrap();
        let mut pool = FrameReceiver::new(
            Receiver::new(parent, None, Duration::ZERO),
            Side::Parent,
            100,
        );
        let mut frame = Vec::new();
        let mut send = |seq: u64| {
            start(&mut frame);
            frame.push(7);
            seal(&mut frame);
            frame[8..HEADER].copy_from_slice(&seq.to_le_bytes());
            worker.send(&frame, None).unwrap();
        };
        pool.next_job().unwrap();
        send(1);
        assert_eq!(pool.recv().unwrap(), [7], "job 1's own reply");
        // A second reply to job 1, read while job 2 runs: refused.
        pool.next_job().unwrap();
        send(1);
        assert!(matches!(pool.recv(), Err(FrameError::Malformed(_))));
        // A reply waiting before a job starts: the job is not given to that worker.
        send(2);
        assert!(matches!(pool.next_job(), Err(FrameError::Malformed(_))));
    }
}
