//! A `tracing` subscriber for tests: it keeps each event it is interested in as a line of
//! text, `message key=value ... level=LEVEL`, for assertions on what was logged. It is
//! installed process-wide, so a test binary installs it once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The events kept so far, one line each.
pub(crate) type Seen = Arc<Mutex<Vec<String>>>;

/// Installs the capture as the process's subscriber, keeping the events whose metadata
/// `keep` accepts; returns what it keeps.
pub(crate) fn install(keep: fn(&Metadata<'_>) -> bool) -> Seen {
    let seen = Seen::default();
    tracing::subscriber::set_global_default(Capture {
        seen: Arc::clone(&seen),
        spans: AtomicU64::new(0),
        keep,
    })
    .expect("the capture is the only subscriber of this test binary");
    seen
}

struct Capture {
    seen: Seen,
    spans: AtomicU64,
    keep: fn(&Metadata<'_>) -> bool,
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        (self.keep)(metadata)
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.spans.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        line.0
            .push_str(&format!(" level={}", event.metadata().level()));
        self.seen.lock().push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
