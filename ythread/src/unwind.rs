//! Catching panics at the work boundary, with their message and location.
//!
//! `catch_unwind` hands back the payload but not where the panic happened, and the location is
//! half of what a caller needs. A process-wide panic hook, installed once and chained to the
//! previous hook, records the location in a thread-local while a capture is active. Panics
//! inside captured work are *not* printed: they come back as an [`Error`] that says it all, and
//! a server that turns a bad request into an error should not spray stderr. Panics anywhere
//! else (a handler's own, or another library's) go to the previous hook as usual.

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

thread_local! {
    static CAPTURE: Cell<Capture> = const { Cell::new(Capture::Off) };
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
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
            let capture = CAPTURE.with(Cell::get);
            if capture != Capture::Off {
                let location = info.location().map(|l| l.to_string());
                LOCATION.with(|slot| *slot.borrow_mut() = location);
            }
            if capture != Capture::RecordSilently {
                previous(info);
            }
        }));
    });
}

/// Restores the previous capture mode even if `f` unwinds.
struct ModeGuard(Capture);

impl Drop for ModeGuard {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.set(self.0));
    }
}

fn with_mode<R>(mode: Capture, f: impl FnOnce() -> R) -> std::thread::Result<R> {
    install_hook();
    let _restore = ModeGuard(CAPTURE.with(|c| c.replace(mode)));
    panic::catch_unwind(AssertUnwindSafe(f))
}

/// Runs `f`, turning a panic into [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the
/// panic's message and location. `what` names the work for the message ("task `sumn`").
pub(crate) fn catch_work<R>(
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> R,
) -> Result<R, Error> {
    with_mode(Capture::RecordSilently, f).map_err(|payload| panic_error(what(), payload.as_ref()))
}

/// Runs a handler, recording the location of a panic but leaving its printing to the hook.
pub(crate) fn catch_handler<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    with_mode(Capture::Record, f)
}

/// Builds the error for a caught panic, taking the location the hook recorded.
pub(crate) fn panic_error(what: String, payload: &(dyn Any + Send)) -> Error {
    let location = LOCATION.with(|slot| slot.borrow_mut().take());
    Error::panicked(what, payload_message(payload), location)
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
        assert!(CAPTURE.with(Cell::get) == Capture::Off);
    }
}
