//! Catching panics at the work boundary, with their message and location.
//!
//! `catch_unwind` hands back the payload but not where the panic happened, and the location is
//! half of what a caller needs. A process-wide panic hook, installed once and chained to the
//! previous hook, records the location in a thread-local while a capture is active. Panics
//! inside captured work are *not* printed: they come back as an [`Error`] that says it all, and
//! a server that turns a bad request into an error should not spray stderr. Panics anywhere
//! else (a handler's own, or another library's) go to the previous hook as usual.
//!
//! Policies, and their trade-offs:
//! - Each capture starts with nothing recorded, and a recorded location is used only for the
//!   payload whose message it was recorded with. A payload thrown again with `resume_unwind`
//!   (which skips the hook) keeps the location of the panic that raised it; a new payload
//!   thrown that way has none, rather than the location of some earlier, caught panic. Two
//!   payloads with the same message are not told apart.
//! - Only the *first* panic of a work capture is silent. A second one before the capture
//!   ends means the work panicked again while unwinding (or caught a panic itself and went
//!   on); a panic out of a destructor during unwinding aborts the process, so the hook prints
//!   the first panic and passes the later ones to the previous hook: the abort is explained.
//! - Dropping a payload can panic too; [`drop_quietly`] contains that, so a hostile payload
//!   cannot take down the driver that reports it.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::Error;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Capture {
    Off,
    /// Record the location and let the previous hook print as usual (handler code).
    Record,
    /// Record the location and print nothing (work: the error carries the panic).
    RecordSilently,
}

/// A panic the hook saw during capture `capture`.
#[derive(Clone)]
struct Recorded {
    capture: u64,
    message: String,
    location: Option<String>,
}

/// How many panics this thread remembers; older ones are forgotten.
const MAX_RECORDED: usize = 8;

// Starting and ending a capture touches only const, destructor-free cells: that happens for
// every piece of work, so it must cost no more than a few loads and stores. The records are
// touched only when something panics.
thread_local! {
    static MODE: Cell<Capture> = const { Cell::new(Capture::Off) };
    /// The innermost capture's id (0: none). Each capture gets a new id, so it starts with
    /// nothing recorded without clearing anything.
    static CAPTURE_ID: Cell<u64> = const { Cell::new(0) };
    /// The last id handed out on this thread.
    static LAST_ID: Cell<u64> = const { Cell::new(0) };
    /// The capture whose silenced first panic a later one has already printed.
    static PRINTED: Cell<u64> = const { Cell::new(0) };
    /// Panics seen during captures, newest last.
    static RECORDED: RefCell<Vec<Recorded>> = const { RefCell::new(Vec::new()) };
}

static HOOK: Once = Once::new();

fn install_hook() {
    // std refuses to change the hook from a panicking thread (it panics, and a panic in a
    // destructor during unwinding aborts). Install later from a calm thread; until then a
    // panic's location is unknown and work panics print as usual.
    if HOOK.is_completed() || std::thread::panicking() {
        return;
    }
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            // `try_` throughout: the hook may run while this thread's locals are being
            // destroyed; then it only forwards.
            let mode = MODE.try_with(Cell::get).unwrap_or(Capture::Off);
            let capture = CAPTURE_ID.try_with(Cell::get).unwrap_or(0);
            if mode == Capture::Off {
                return previous(info);
            }
            let recorded = Recorded {
                capture,
                message: payload_message(info.payload()),
                location: info.location().map(|l| l.to_string()),
            };
            let earlier = record(recorded);
            if mode == Capture::Record {
                return previous(info);
            }
            // Work: its first panic is silent, the error will carry it. A later one means
            // the work panicked again before the first was caught, which may be about to
            // abort the process: print both.
            let Some(first) = earlier else {
                return;
            };
            if PRINTED.try_with(|p| p.replace(capture)).ok() != Some(capture) {
                print_silenced(&first);
            }
            previous(info);
        }));
    });
}

/// Remembers a panic; returns the first one remembered for the same capture, if any.
fn record(recorded: Recorded) -> Option<Recorded> {
    RECORDED
        .try_with(|all| {
            let mut all = all.try_borrow_mut().ok()?;
            let first = all.iter().find(|r| r.capture == recorded.capture).cloned();
            if all.len() == MAX_RECORDED {
                all.remove(0);
            }
            all.push(recorded);
            first
        })
        .ok()
        .flatten()
}

/// Prints a work panic the hook kept quiet, now that a later panic shows it matters.
fn print_silenced(first: &Recorded) {
    let at = first.location.as_deref().unwrap_or("an unknown location");
    eprintln!(
        "ythread: work panicked at {at}:\n{}\nand panicked again before the panic was caught:",
        first.message
    );
}

/// Restores the enclosing capture even if the captured code unwinds.
struct Restore {
    mode: Capture,
    id: u64,
}

impl Drop for Restore {
    fn drop(&mut self) {
        MODE.with(|mode| mode.set(self.mode));
        CAPTURE_ID.with(|id| id.set(self.id));
    }
}

/// Runs `f` in a new capture of `mode`; a panic's payload goes to `on_panic` while the
/// capture is still current, so that [`panic_error`] finds its location.
fn with_mode<R, E>(
    mode: Capture,
    f: impl FnOnce() -> R,
    on_panic: impl FnOnce(Box<dyn Any + Send>) -> E,
) -> Result<R, E> {
    install_hook();
    let id = LAST_ID.with(|last| {
        let id = last.get() + 1;
        last.set(id);
        id
    });
    let _restore = Restore {
        mode: MODE.with(|m| m.replace(mode)),
        id: CAPTURE_ID.with(|c| c.replace(id)),
    };
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(on_panic)
}

/// Runs `f`, turning a panic into [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the
/// panic's message and location. `what` names the work for the message ("task `sumn`").
pub(crate) fn catch_work<R>(
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> R,
) -> Result<R, Error> {
    with_mode(Capture::RecordSilently, f, |payload| {
        let error = panic_error(what(), payload.as_ref());
        drop_quietly(payload);
        error
    })
}

/// Runs a handler, recording the location of a panic but leaving its printing to the hook.
/// `on_panic` gets the payload while its location can still be found with [`panic_error`].
pub(crate) fn catch_handler<R, E>(
    f: impl FnOnce() -> R,
    on_panic: impl FnOnce(Box<dyn Any + Send>) -> E,
) -> Result<R, E> {
    with_mode(Capture::Record, f, on_panic)
}

/// Builds the error for a caught panic, with the location the hook recorded for its payload.
pub(crate) fn panic_error(what: String, payload: &(dyn Any + Send)) -> Error {
    let message = payload_message(payload);
    let location = take_location(&message);
    Error::panicked(what, message, location)
}

/// The location recorded in the current capture for the newest panic with `message`, if
/// any; forgets the current capture's records.
fn take_location(message: &str) -> Option<String> {
    let capture = CAPTURE_ID.try_with(Cell::get).ok()?;
    RECORDED
        .try_with(|all| {
            let mut all = all.try_borrow_mut().ok()?;
            let found = all
                .iter()
                .rev()
                .find(|r| r.capture == capture && r.message == message)
                .and_then(|r| r.location.clone());
            all.retain(|r| r.capture != capture);
            found
        })
        .ok()
        .flatten()
}

/// Drops `value`, containing a panic in its destructor (a panic payload's, say): the panic
/// is printed by the hook and its own payload is leaked rather than risk a third.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
        std::mem::forget(payload);
    }
}

/// The text of a panic payload: the `&str` or `String` given to `panic!`, or a placeholder.
pub fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_panic_carries_message_and_this_files_location() {
        let err = catch_work(|| "task `t`".into(), || panic!("bad input {}", 7)).unwrap_err();
        assert_eq!(err.message(), Some("bad input 7"));
        assert!(err.location().unwrap().contains("unwind.rs"), "{err}");
        assert!(
            err.to_string().starts_with("task `t` panicked at "),
            "{err}"
        );
    }

    #[test]
    fn capture_mode_is_restored_after_a_panic() {
        let _ = catch_work(|| "x".into(), || panic!("x"));
        assert!(MODE.with(Cell::get) == Capture::Off);
    }

    #[test]
    fn a_capture_inside_a_capture_keeps_the_outer_records() {
        let outer = catch_work(
            || "outer".into(),
            || {
                let inner = catch_work(|| "inner".into(), || panic!("inner"));
                assert!(inner.unwrap_err().location().is_some());
                panic!("outer")
            },
        )
        .unwrap_err();
        assert_eq!(outer.message(), Some("outer"));
        assert!(outer.location().unwrap().contains("unwind.rs"), "{outer}");
    }
}
