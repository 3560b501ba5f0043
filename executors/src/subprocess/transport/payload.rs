//! Where a job's arguments or a reply's result go: inline in the frame while small, straight
//! into the shared-memory region once they pass the threshold.
//!
//! [`PayloadWriter`] is the [`ByteSink`] that postcard encodes into. It appends to the frame
//! until the payload passes [`SHM_THRESHOLD`]; then it moves what it has (at most the
//! threshold) to the start of the region and writes everything after that straight into the
//! mapping, growing the region as needed. So a small payload costs what it always did, and a
//! large one is encoded once, into the memory the other process reads it from: no socket
//! copies, no joining of pieces.
//!
//! A byte string of at least [`DIRECT_THRESHOLD`] given to a writer that can
//! [`SendApart`] skips both: it goes by a direct copy (see `direct.rs`), and the writer
//! records a [`Gap`] where it was, for the frame's trailer.
//!
//! Every payload, inline, shared or apart, is held to the pool's `max_payload`: the writer
//! refuses the byte that would pass it, so a runaway result cannot fill memory before it fails.

use std::io;

use ythread::{ByteSink, SinkRefused};

use super::shm::Region;
use crate::wire::{Gap, Placement};

/// Payloads larger than this travel through shared memory: 64 KiB. Below it a socket's copy
/// costs less than the region's bookkeeping, and the frame goes out as one packet.
pub(crate) const SHM_THRESHOLD: usize = 64 << 10;

/// Byte strings at least this large are copied directly: 256 KiB. Below it, the message
/// exchange a direct copy needs costs more than the copies it saves.
pub(crate) const DIRECT_THRESHOLD: usize = 256 << 10;

/// A way to move a large byte string to the other process by a direct copy.
pub(crate) trait SendApart {
    /// Moves `bytes`; when this returns `Ok`, the other process has them.
    fn send_apart(&mut self, bytes: &[u8]) -> Result<(), Refusal>;
}

/// Why a payload could not be written.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// It is larger than the pool's `max_payload`.
    TooLarge { max: usize },
    /// The region could not grow.
    Region(io::Error),
    /// The worker could not allocate room for a byte string sent apart (its memory limit).
    NoRoom(String),
    /// A direct copy failed: the other process is gone, or broke the protocol.
    Lost(String),
    /// The other process declines direct copies (it is no longer dumpable): the bytes take
    /// the usual path, and so does the rest of the payload. Never the writer's own refusal.
    Declined,
    /// The job's handler was cancelled before the job could reach the worker.
    Cancelled,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLarge { max } => write!(
                f,
                "it is larger than the pool's max_payload of {}; raise `max_payload` or send \
                 less",
                crate::units::size_text(*max as u64)
            ),
            Refusal::Region(e) => write!(
                f,
                "the shared-memory region could not grow ({e}); free memory or lower the \
                 payload's size"
            ),
            Refusal::NoRoom(why) => write!(
                f,
                "the worker had no room for it ({why}); raise the pool's `memory` limit or send \
                 less"
            ),
            Refusal::Lost(why) => write!(f, "a direct copy failed: {why}"),
            Refusal::Declined => f.write_str("the worker declines direct copies"),
            Refusal::Cancelled => f.write_str("the job was cancelled before it was sent"),
        }
    }
}

/// A payload being written: see the module docs.
pub(crate) struct PayloadWriter<'a> {
    frame: &'a mut Vec<u8>,
    /// Where the payload starts in `frame`.
    start: usize,
    region: &'a mut Region,
    apart: Option<&'a mut dyn SendApart>,
    max: usize,
    /// Bytes written so far, wherever they went.
    total: usize,
    /// Bytes written to the frame or the region (all but those sent apart).
    written: usize,
    shared: bool,
    gaps: Vec<Gap>,
    refused: Option<Refusal>,
}

impl<'a> PayloadWriter<'a> {
    /// A payload appended to `frame` (or moved to `region`), at most `max` bytes.
    pub(crate) fn new(frame: &'a mut Vec<u8>, region: &'a mut Region, max: usize) -> Self {
        PayloadWriter {
            start: frame.len(),
            frame,
            region,
            apart: None,
            max,
            total: 0,
            written: 0,
            shared: false,
            gaps: Vec::new(),
            refused: None,
        }
    }

    /// Sends byte strings of at least [`DIRECT_THRESHOLD`] apart through `apart`.
    pub(crate) fn sending_apart(mut self, apart: &'a mut dyn SendApart) -> Self {
        self.apart = Some(apart);
        self
    }

    /// Where the payload ended up and the byte strings sent apart from it, or why it was
    /// refused (when the encoding failed because this writer refused a write).
    pub(crate) fn finish(self) -> Result<(Placement, Vec<Gap>), Refusal> {
        if let Some(refusal) = self.refused {
            return Err(refusal);
        }
        let placement = if self.shared {
            Placement::Shared { len: self.written }
        } else {
            Placement::Inline
        };
        Ok((placement, self.gaps))
    }

    fn refuse(&mut self, why: Refusal) -> Result<(), SinkRefused> {
        self.refused = Some(why);
        Err(SinkRefused)
    }
}

impl ByteSink for PayloadWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), SinkRefused> {
        if self.total + bytes.len() > self.max {
            return self.refuse(Refusal::TooLarge { max: self.max });
        }
        self.total += bytes.len();
        if bytes.len() >= DIRECT_THRESHOLD
            && let Some(apart) = self.apart.as_mut()
        {
            match apart.send_apart(bytes) {
                Ok(()) => {
                    self.gaps.push(Gap {
                        at: self.written as u64,
                        len: bytes.len() as u64,
                    });
                    return Ok(());
                }
                Err(Refusal::Declined) => self.apart = None,
                Err(refusal) => return self.refuse(refusal),
            }
        }
        let total = self.written + bytes.len();
        if !self.shared && total <= SHM_THRESHOLD {
            self.frame.extend_from_slice(bytes);
            self.written = total;
            return Ok(());
        }
        let at = self.written;
        let room = match self.region.reserve(total) {
            Ok(room) => room,
            Err(e) => return self.refuse(Refusal::Region(e)),
        };
        if !self.shared {
            // Move what was written inline (at most the threshold) to the region's start.
            room[..at].copy_from_slice(&self.frame[self.start..]);
            self.frame.truncate(self.start);
            self.shared = true;
        }
        room[at..total].copy_from_slice(bytes);
        self.written = total;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_payloads_stay_inline_and_large_ones_move_to_the_region() {
        let mut region = Region::create("test").unwrap();
        let mut frame = b"head".to_vec();
        let mut writer = PayloadWriter::new(&mut frame, &mut region, usize::MAX);
        writer.put(b"small").unwrap();
        assert_eq!(writer.finish().unwrap(), (Placement::Inline, Vec::new()));
        assert_eq!(frame, b"headsmall");

        let mut frame = b"head".to_vec();
        let big = vec![9u8; SHM_THRESHOLD];
        let mut writer = PayloadWriter::new(&mut frame, &mut region, usize::MAX);
        writer.put(b"ab").unwrap();
        writer.put(&big).unwrap();
        writer.put(b"z").unwrap();
        let len = SHM_THRESHOLD + 3;
        assert_eq!(writer.finish().unwrap().0, Placement::Shared { len });
        assert_eq!(frame, b"head", "nothing of the payload is left inline");
        let shared = region.read(len).unwrap();
        assert_eq!(&shared[..2], b"ab");
        assert_eq!(shared[len - 1], b'z');
        assert!(shared[2..len - 1].iter().all(|&b| b == 9));
    }

    #[test]
    fn a_payload_past_the_maximum_is_refused_on_either_path() {
        let mut region = Region::create("test").unwrap();
        for max in [10, SHM_THRESHOLD + 10] {
            let mut frame = Vec::new();
            let mut writer = PayloadWriter::new(&mut frame, &mut region, max);
            let too_much = vec![0u8; max + 1];
            assert!(writer.put(&too_much).is_err());
            assert!(matches!(writer.finish(), Err(Refusal::TooLarge { .. })));
        }
    }

    /// Keeps what it is sent apart.
    #[derive(Default)]
    struct Apart(Vec<Vec<u8>>);

    impl SendApart for Apart {
        fn send_apart(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
            self.0.push(bytes.to_vec());
            Ok(())
        }
    }

    #[test]
    fn large_byte_strings_go_apart_and_leave_gaps_where_they_were() {
        let mut region = Region::create("test").unwrap();
        let mut apart = Apart::default();
        let mut frame = Vec::new();
        let big = vec![5u8; DIRECT_THRESHOLD];
        let mut writer =
            PayloadWriter::new(&mut frame, &mut region, usize::MAX).sending_apart(&mut apart);
        writer.put(b"ab").unwrap();
        writer.put(&big).unwrap();
        writer.put(&big[1..]).unwrap();
        writer.put(&big).unwrap();
        let (placement, gaps) = writer.finish().unwrap();
        let len = DIRECT_THRESHOLD as u64;
        assert_eq!(
            placement,
            Placement::Shared {
                len: 2 + DIRECT_THRESHOLD - 1
            }
        );
        assert_eq!(gaps, [Gap { at: 2, len }, Gap { at: len + 1, len }]);
        assert_eq!(apart.0, [big.clone(), big]);

        // Sent apart or not, every byte counts against the maximum.
        let mut frame = Vec::new();
        let max = 2 * DIRECT_THRESHOLD;
        let mut apart = Apart::default();
        let mut writer = PayloadWriter::new(&mut frame, &mut region, max).sending_apart(&mut apart);
        writer.put(&vec![0u8; DIRECT_THRESHOLD]).unwrap();
        writer.put(&vec![0u8; DIRECT_THRESHOLD]).unwrap();
        assert!(writer.put(b"x").is_err());
        assert!(matches!(writer.finish(), Err(Refusal::TooLarge { .. })));
    }
}
