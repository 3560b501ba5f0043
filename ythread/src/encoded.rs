//! [`Encoded`]: a postcard encoding whose large byte strings may have travelled apart from the
//! rest, so that a strategy can move them straight between processes and the decoder can hand
//! them to the value without another copy.
//!
//! A strategy that moves bytes between processes pays for every copy of a large payload. The
//! encoder sees a `Vec<u8>` behind `serde_bytes`, or a `String`, as one slice ([`ByteSink`]
//! gets it in one `put`), so a strategy can send that slice its own way and leave a gap in the
//! rest of the encoding. The receiving side describes the gaps here: for each, where it was in
//! the rest and the bytes that fill it, already in a `Vec` of their own. Decoding then gives
//! that `Vec` to the value being built (`visit_byte_buf`, `visit_string`) instead of copying
//! it, which postcard's own decoder cannot do.
//!
//! The trade-off: the decoder of an encoding with gaps is this crate's own reading of
//! postcard's format (see `decode.rs`), not postcard's. An encoding without gaps is decoded by
//! postcard itself, exactly as before.
//!
//! [`ByteSink`]: crate::ByteSink

use std::fmt;

/// Encoded bytes, some of which may have travelled apart: see the module docs.
#[derive(Debug)]
pub struct Encoded<'a> {
    rest: &'a [u8],
    apart: Vec<Apart>,
}

/// Bytes that travelled apart from the rest of an encoding, and where they belong.
#[derive(Debug, PartialEq, Eq)]
pub struct Apart {
    /// The offset in the rest of the encoding where these bytes go (before the byte now at
    /// that offset).
    pub at: usize,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl<'a> Encoded<'a> {
    /// An encoding that is all in one piece.
    pub fn whole(bytes: &'a [u8]) -> Self {
        Encoded {
            rest: bytes,
            apart: Vec::new(),
        }
    }

    /// An encoding made of `rest` with the gaps `apart` filled in.
    ///
    /// # Errors
    /// When the gaps are not in order of their offsets, or one lies past the end of `rest`.
    pub fn with_apart(rest: &'a [u8], apart: Vec<Apart>) -> Result<Self, BadGaps> {
        let mut last = 0;
        for gap in &apart {
            if gap.at < last || gap.at > rest.len() {
                return Err(BadGaps {
                    at: gap.at,
                    rest: rest.len(),
                });
            }
            last = gap.at;
        }
        Ok(Encoded { rest, apart })
    }

    /// The bytes outside the gaps.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Whether some bytes travelled apart.
    pub fn has_apart(&self) -> bool {
        !self.apart.is_empty()
    }

    /// Appends the encoding in one piece to `whole`: the rest with every gap filled in.
    pub fn append_to(&self, whole: &mut Vec<u8>) {
        let total = self.rest.len() + self.apart.iter().map(|a| a.bytes.len()).sum::<usize>();
        whole.reserve(total);
        let mut from = 0;
        for gap in &self.apart {
            whole.extend_from_slice(&self.rest[from..gap.at]);
            whole.extend_from_slice(&gap.bytes);
            from = gap.at;
        }
        whole.extend_from_slice(&self.rest[from..]);
    }

    pub(crate) fn into_parts(self) -> (&'a [u8], Vec<Apart>) {
        (self.rest, self.apart)
    }
}

/// Gaps of an [`Encoded`] that do not fit its rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadGaps {
    at: usize,
    rest: usize,
}

impl fmt::Display for BadGaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bytes sent apart at offset {} do not fit an encoding of {} bytes (offsets must be \
             in order and within the rest)",
            self.at, self.rest
        )
    }
}

impl std::error::Error for BadGaps {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_fill_back_into_the_whole_and_bad_gaps_are_refused() {
        let apart = vec![
            Apart {
                at: 0,
                bytes: b"ab".to_vec(),
            },
            Apart {
                at: 2,
                bytes: b"XY".to_vec(),
            },
            Apart {
                at: 3,
                bytes: b"!".to_vec(),
            },
        ];
        let encoded = Encoded::with_apart(b"cde", apart).unwrap();
        let mut whole = b">".to_vec();
        encoded.append_to(&mut whole);
        assert_eq!(whole, b">abcdXYe!");
        let late = vec![Apart {
            at: 4,
            bytes: vec![1],
        }];
        assert!(Encoded::with_apart(b"cde", late).is_err());
        let unordered = vec![
            Apart {
                at: 2,
                bytes: vec![1],
            },
            Apart {
                at: 1,
                bytes: vec![1],
            },
        ];
        let error = Encoded::with_apart(b"cde", unordered).unwrap_err();
        assert!(error.to_string().contains("in order"), "{error}");
    }
}
