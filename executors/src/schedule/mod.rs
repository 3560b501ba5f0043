//! Learned, size-aware scheduling: the front door that `exclusive`, `rayon` and `subprocess`
//! share.
//!
//! For each piece of work the scheduler asks the task's cost model (in `ythread`) for a
//! prediction, then decides:
//!
//! 1. **Inline** if the work is predicted cheaper than the `inline_below` threshold: it runs on
//!    the handler's own thread with no hand-off, since the hand-off would cost more than the
//!    work. With `inline_below=auto` the threshold is the strategy's own hand-off overhead,
//!    learned from the work it hands off (the time a hand-off takes beyond the work itself,
//!    averaged like a task's cost), capped at [`AUTO_CEILING`].
//! 2. Otherwise it **waits in the line** for a resource, ranked by its prediction
//!    (`order=shortest`) or not at all (`order=fifo`). Work that would use an express resource
//!    must be predicted under [`EXPRESS_BELOW`].
//!
//! Work never run before has no prediction: it counts as long, is never inlined and goes to
//! the back of the shortest-first order, so a mistake costs one run. Every run is timed where
//! it runs and teaches the model, whichever way it went, so a task whose cost changes moves
//! across the threshold in either direction. Closures have no model: always long.
//!
//! Trade-off: a prediction (a few ns) and two clock reads per piece of work, and an inline
//! decision that can be wrong for one run when a task's cost jumps. Inlined work runs outside
//! the strategy's bound on parallelism; it is bounded instead by being cheaper than a
//! hand-off.

mod line;
mod scheduler;
mod settings;
mod stats;

pub use self::line::MAX_OVERTAKES;
pub(crate) use self::line::{Lane, Line, Ticket};
pub(crate) use self::scheduler::Scheduler;
pub use self::scheduler::{AUTO_CEILING, EXPRESS_BELOW};
pub(crate) use self::settings::parse_express;
pub use self::settings::{InlineBelow, MAX_EXPRESS, Order, Scheduling};
#[cfg(feature = "nats")]
pub(crate) use self::stats::Stats;
