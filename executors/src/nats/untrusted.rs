//! Text that comes from a node (or from anyone who can publish on the caller's reply
//! subjects) is data: bounded and stripped of control characters before it reaches an error
//! that a server may write to its clients.
//!
//! A node's error messages, panic messages and locations, and the `HOST:PID` it names itself
//! with, are all free text from another process. Unfiltered, a newline in them forges a line
//! in a line-based reply, an escape sequence rewrites a terminal, and a megabyte of text
//! becomes a megabyte in every log line that quotes the error. Here every control character
//! (and every Unicode direction override) is written as its Rust escape (`\n`, `\u{1b}`), and
//! text past a limit is cut at a character boundary with a note of how much was cut.
//!
//! Trade-off: a node's multi-line panic message arrives on one line, with `\n` in it. The
//! subprocess strategy's worker text needs the same treatment; this file has no dependency on
//! the broker and can move to the core crate as it is.

use super::subjects;
use crate::subprocess::protocol::WireError;

/// The most bytes of one message (an error's text, a panic message) kept from a node.
pub(crate) const TEXT_LIMIT: usize = 2048;

/// The most bytes of a node's name (its `HOST:PID`) kept.
pub(crate) const NAME_LIMIT: usize = 128;

/// `text` with control characters escaped and at most about `limit` bytes of it kept.
pub(crate) fn clean(text: &str, limit: usize) -> String {
    let mut out = String::with_capacity(text.len().min(limit) + 32);
    for (at, c) in text.char_indices() {
        let start = out.len();
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
        if out.len() > limit {
            out.truncate(start);
            out.push_str(&format!(" [{} more bytes cut]", text.len() - at));
            return out;
        }
    }
    out
}

/// Control characters, and the Unicode marks that reorder how the text around them shows.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A node's account of a failure, every string in it cleaned.
pub(crate) fn clean_wire_error(wire: WireError) -> WireError {
    match wire {
        WireError::Panicked { message, location } => WireError::Panicked {
            message: clean(&message, TEXT_LIMIT),
            location: location.map(|l| clean(&l, TEXT_LIMIT)),
        },
        WireError::UnknownTask => WireError::UnknownTask,
        WireError::Codec(text) => WireError::Codec(clean(&text, TEXT_LIMIT)),
        WireError::Other(text) => WireError::Other(clean(&text, TEXT_LIMIT)),
    }
}

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
    fn control_characters_are_escaped_and_plain_text_kept() {
        assert_eq!(clean("plain text, ünïcode", 100), "plain text, ünïcode");
        assert_eq!(
            clean("line\nforged\r\n\u{1b}[2Jgone\u{202e}", 100),
            "line\\nforged\\r\\n\\u{1b}[2Jgone\\u{202e}"
        );
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_saying_how_much() {
        let long = "é".repeat(5000);
        let cut = clean(&long, TEXT_LIMIT);
        assert!(cut.len() < TEXT_LIMIT + 40, "{}", cut.len());
        assert!(cut.ends_with(" [7952 more bytes cut]"), "{cut}");
        let escapes = "\u{1b}".repeat(1000);
        let cut = clean(&escapes, 60);
        assert!(cut.starts_with("\\u{1b}\\u{1b}"), "{cut}");
        assert!(cut.len() < 60 + 40, "{cut}");
    }

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

    #[test]
    fn every_string_of_a_wire_error_is_cleaned() {
        let WireError::Panicked { message, location } = clean_wire_error(WireError::Panicked {
            message: "boom\nFORGED".to_owned(),
            location: Some("x".repeat(10_000)),
        }) else {
            panic!("the kind is kept")
        };
        assert_eq!(message, "boom\\nFORGED");
        assert!(location.unwrap().len() < TEXT_LIMIT + 40);
    }
}
