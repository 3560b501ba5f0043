//! Names that come from a node or a publisher: bounded, cleaned, and checked before they are
//! used as a subject. Other text from a node is cleaned where it becomes an error (see the
//! crate's `untrusted.rs`).

use super::subjects;
use crate::untrusted::clean;

/// The most bytes of a node's name (its `HOST:PID`) kept.
pub(crate) const NAME_LIMIT: usize = 128;

/// A node's name as a message body carries it, cleaned for error messages.
pub(crate) fn node_name(bytes: &[u8]) -> String {
    clean(&String::from_utf8_lossy(bytes), NAME_LIMIT)
}

/// The node named in a "room" message, if it is a single subject token that jobs can be
/// addressed to; anything else (wildcards, spaces, dots, a name too long) is ignored, so a
/// publisher of "room" messages cannot choose where a caller sends its next job.
pub(crate) fn room_node(bytes: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(bytes).ok()?;
    let valid = !name.is_empty() && name.len() <= NAME_LIMIT && subjects::token(name) == name;
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_messages_name_a_node_only_as_one_valid_token() {
        assert_eq!(room_node(b"host_42"), Some("host_42"));
        for bad in [
            &b""[..],
            b"a.b",
            b"a b",
            b">",
            b"x*",
            b"a\r\nPUB x 1",
            &[b'a'; 200][..],
            &[0xff, 0xfe][..],
        ] {
            assert_eq!(room_node(bad), None, "{bad:?}");
        }
    }
}
