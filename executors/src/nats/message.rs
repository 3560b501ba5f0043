//! What a node sends back on a job's reply subject.
//!
//! A job's body is the subprocess strategy's job body with its arguments inline
//! (`postcard(task name) ++ 0x00 ++ postcard(args)`) and its final reply is the subprocess
//! strategy's reply body with the result inline (result with run time, or error): one encoding
//! for work that leaves the process, whichever way it leaves. The subprocess protocol's tag
//! 0x02 (a result in shared memory) never crosses a broker, nor does a reply with gaps (the
//! protocol's tag bit 0x10). NATS adds two kinds of its own, for the node's identity and its
//! capacity; their tags are read first, so 0x10, which the protocol would read as a result
//! with gaps, is "taken" here:
//!
//! ```text
//! 0x00 ++ ran (u64 LE ns) ++ postcard(result)   done, as in the subprocess protocol
//! 0x01 ++ postcard(WireError)                   failed, as in the subprocess protocol
//! 0x10 ++ node (utf-8 HOST:PID)                 taken: the node runs it now
//! 0x11 ++ node (utf-8 HOST:PID)                 busy: the node has no room; send it again
//! ```
//!
//! Messages on one subject from one connection arrive in order, so "taken" always comes before
//! the reply it announces.

use super::untrusted;
use crate::wire::{self, BadReply, Reply};

const TAKEN: u8 = 0x10;
const BUSY: u8 = 0x11;

/// The header in which a caller declares its job's size (`Task::size`), in decimal; the
/// node's admission reads it.
pub(crate) const SIZE_HEADER: &str = "Ythread-Size";

/// One message from a node, decoded; a node's name is cleaned for messages (see
/// `untrusted.rs`).
pub(crate) enum FromNode<'a> {
    /// The node took the job.
    Taken(String),
    /// The node has no room.
    Busy(String),
    /// The job's outcome.
    Reply(Reply<'a>),
}

/// The body of a "taken" message.
pub(crate) fn taken(node: &str) -> Vec<u8> {
    tagged(TAKEN, node)
}

/// The body of a "busy" message.
pub(crate) fn busy(node: &str) -> Vec<u8> {
    tagged(BUSY, node)
}

fn tagged(tag: u8, node: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(1 + node.len());
    body.push(tag);
    body.extend_from_slice(node.as_bytes());
    body
}

/// Decodes a message from a node.
pub(crate) fn read(body: &[u8]) -> Result<FromNode<'_>, BadReply> {
    match body.split_first() {
        Some((&TAKEN, rest)) => Ok(FromNode::Taken(untrusted::node_name(rest))),
        Some((&BUSY, rest)) => Ok(FromNode::Busy(untrusted::node_name(rest))),
        _ => wire::read_reply(body).map(FromNode::Reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_messages_round_trip_beside_replies() {
        assert!(matches!(read(&taken("h:1")), Ok(FromNode::Taken(n)) if n == "h:1"));
        assert!(matches!(read(&busy("h:2")), Ok(FromNode::Busy(n)) if n == "h:2"));
        assert!(matches!(read(b"\x10h\n\x1b[1m"), Ok(FromNode::Taken(n)) if n == "h\\n\\u{1b}[1m"));
        let mut reply = Vec::new();
        wire::write_reply(&[0xff], &mut reply, |_, _, _| Ok(()));
        assert!(matches!(
            read(&reply),
            Ok(FromNode::Reply(Reply::Failed(_)))
        ));
        assert!(read(&[9]).is_err());
    }
}
