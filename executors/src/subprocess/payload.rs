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
//! Every payload, inline or shared, is held to the pool's `max_payload`: the writer refuses
//! the byte that would pass it, so a runaway result cannot fill memory before it fails.

use std::io;

use ythread::{ByteSink, SinkRefused};

use super::shm::Region;

/// Payloads larger than this travel through shared memory: 64 KiB. Below it a socket's copy
/// costs less than the region's bookkeeping, and the frame goes out as one packet.
pub(super) const SHM_THRESHOLD: usize = 64 << 10;

/// Where a finished payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Placement {
    /// In the frame, after its header.
    Inline,
    /// The first `len` bytes of the region.
    Shared { len: usize },
}

/// Why a payload could not be written.
#[derive(Debug)]
pub(super) enum Refusal {
    /// It is larger than the pool's `max_payload`.
    TooLarge { max: usize },
    /// The region could not grow.
    Region(io::Error),
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
        }
    }
}

/// A payload being written: see the module docs.
pub(super) struct PayloadWriter<'a> {
    frame: &'a mut Vec<u8>,
    /// Where the payload starts in `frame`.
    start: usize,
    region: &'a mut Region,
    max: usize,
    /// Bytes written so far, wherever they went.
    written: usize,
    shared: bool,
    refused: Option<Refusal>,
}

impl<'a> PayloadWriter<'a> {
    /// A payload appended to `frame` (or moved to `region`), at most `max` bytes.
    pub(super) fn new(frame: &'a mut Vec<u8>, region: &'a mut Region, max: usize) -> Self {
        PayloadWriter {
            start: frame.len(),
            frame,
            region,
            max,
            written: 0,
            shared: false,
            refused: None,
        }
    }

    /// Where the payload ended up, or why it was refused (when the encoding failed because
    /// this writer refused a write).
    pub(super) fn finish(self) -> Result<Placement, Refusal> {
        if let Some(refusal) = self.refused {
            return Err(refusal);
        }
        Ok(if self.shared {
            Placement::Shared { len: self.written }
        } else {
            Placement::Inline
        })
    }

    fn refuse(&mut self, why: Refusal) -> Result<(), SinkRefused> {
        self.refused = Some(why);
        Err(SinkRefused)
    }
}

impl ByteSink for PayloadWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), SinkRefused> {
        let total = self.written + bytes.len();
        if total > self.max {
            return self.refuse(Refusal::TooLarge { max: self.max });
        }
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
        assert_eq!(writer.finish().unwrap(), Placement::Inline);
        assert_eq!(frame, b"headsmall");

        let mut frame = b"head".to_vec();
        let big = vec![9u8; SHM_THRESHOLD];
        let mut writer = PayloadWriter::new(&mut frame, &mut region, usize::MAX);
        writer.put(b"ab").unwrap();
        writer.put(&big).unwrap();
        writer.put(b"z").unwrap();
        let len = SHM_THRESHOLD + 3;
        assert_eq!(writer.finish().unwrap(), Placement::Shared { len });
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
}
