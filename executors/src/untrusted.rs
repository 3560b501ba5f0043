//! Text that comes from another process (a subprocess worker, a nats node, anyone who can
//! publish on a caller's reply subjects) is data: bounded and stripped of control characters
//! before it reaches an error that a server may write to its clients.
//!
//! A worker's error messages, panic messages and locations, and the names a node gives itself,
//! are all free text from a process that may be compromised. Unfiltered, a newline in them
//! forges a line in a line-based reply, an escape sequence rewrites a terminal, and a megabyte
//! of text becomes a megabyte in every log line that quotes the error. Here every control
//! character (and every Unicode direction override) is written as its Rust escape (`\n`,
//! `\u{1b}`), and text past a limit is cut at a character boundary with a note of how much
//! was cut.
//!
//! Trade-off: a multi-line panic message arrives on one line, with `\n` in it.

/// The most bytes of one message (an error's text, a panic message) kept from another process.
pub(crate) const TEXT_LIMIT: usize = 2048;

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
}
