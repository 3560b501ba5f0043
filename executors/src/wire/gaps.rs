//! The gaps of a body: where the byte strings sent apart (by a direct copy, outside the body)
//! were, listed at the body's end so that the decoder can put them back in order. Jobs and
//! replies share the encoding; only the subprocess transport sends gaps.

/// Where a finished payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// In the frame (or the message), after its header.
    Inline,
    /// The first `len` bytes of the region.
    Shared { len: usize },
}

/// A byte string that went by a direct copy instead of into the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gap {
    /// Where it was, as an offset into the rest of the payload.
    pub(crate) at: u64,
    pub(crate) len: u64,
}

/// A job's or a reply's tag has this bit when gaps follow the payload.
pub(super) const WITH_GAPS: u8 = 0x10;

const GAP_BYTES: usize = 16;
const COUNT_BYTES: usize = 4;

/// Appends `gaps` (if any) to `out` and marks the tag at `tag`.
pub(super) fn write_gaps(out: &mut Vec<u8>, tag: usize, gaps: &[Gap]) {
    if gaps.is_empty() {
        return;
    }
    out[tag] |= WITH_GAPS;
    for gap in gaps {
        out.extend_from_slice(&gap.at.to_le_bytes());
        out.extend_from_slice(&gap.len.to_le_bytes());
    }
    out.extend_from_slice(&(gaps.len() as u32).to_le_bytes());
}

/// Splits the gaps off the end of `body`, if `tag` says it has them.
pub(super) fn read_gaps(body: &[u8], tag: u8) -> Result<(&[u8], Vec<Gap>), &'static str> {
    if tag & WITH_GAPS == 0 {
        return Ok((body, Vec::new()));
    }
    let bad = "gaps that do not fit the frame";
    let (rest, count) = body.split_last_chunk::<COUNT_BYTES>().ok_or(bad)?;
    let count = u32::from_le_bytes(*count) as usize;
    let table = count.checked_mul(GAP_BYTES).ok_or(bad)?;
    let split = rest.len().checked_sub(table).ok_or(bad)?;
    let (payload, table) = rest.split_at(split);
    let gaps = table
        .chunks_exact(GAP_BYTES)
        .map(|gap| {
            let (at, len) = gap.split_at(8);
            Gap {
                at: u64::from_le_bytes(at.try_into().expect("8 bytes")),
                len: u64::from_le_bytes(len.try_into().expect("8 bytes")),
            }
        })
        .collect();
    Ok((payload, gaps))
}
