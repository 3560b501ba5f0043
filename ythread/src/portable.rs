//! The check that work yielded in this process could also run in a worker process.
//!
//! Under `inline`, `exclusive` and `rayon` any work runs, so a task missing from the registry
//! that worker processes serve, or a closure yielded with [`Yielder::run`](crate::Yielder::run),
//! works until the day someone switches to a strategy that sends work out of the process, and
//! then fails with [`ErrorKind::UnknownTask`](crate::ErrorKind::UnknownTask) or
//! [`ErrorKind::NotPortable`](crate::ErrorKind::NotPortable). [`require`] turns on a check
//! that reports such work the first time it is yielded, whatever the strategy:
//! `ythread_executors::init` calls it with the registry it is given, so a program that calls
//! `init` gets the check and one that does not sees no change.
//!
//! Every yield ([`Yielder::apply`](crate::Yielder::apply), [`Yielder::run`](crate::Yielder::run))
//! and every [`Executor::run`](crate::Executor::run), [`Executor::run_closure`](crate::Executor::run_closure)
//! and [`Executor::run_encoded`](crate::Executor::run_encoded) is checked before any strategy
//! sees the work. In [`Mode::Warn`] a task missing from the registry is reported once (per
//! task), closure work once per process, and the work runs as before; in [`Mode::Strict`] such
//! work also fails at once, under every strategy.
//!
//! Cost: with no check required, one relaxed atomic load per yield. With one, a task's verdict
//! is cached in its [`CostModel`] (a static of each task), so a yield of a registered task
//! costs two relaxed loads; the registry is looked up once per task. No allocation, no lock,
//! after the first yield of each task.
//!
//! ```standalone_crate
//! use ythread::portable::{self, Mode, Unportable};
//! use ythread::{Executor, TaskRegistry};
//!
//! ythread::task!(fn listed(x: u64) -> u64 { x + 1 });
//! ythread::task!(fn forgotten(x: u64) -> u64 { x + 2 });
//!
//! fn report(found: &Unportable) {
//!     eprintln!("{found}"); // ythread_executors::init reports through `tracing` instead
//! }
//! portable::require(&TaskRegistry::new().with(listed), Mode::Strict, report);
//! let inline = Executor::inline();
//! assert_eq!(inline.run(listed, 1).unwrap(), 2);
//! let err = inline.run(forgotten, 1).unwrap_err(); // fails even inline
//! assert_eq!(err.kind(), ythread::ErrorKind::UnknownTask);
//! assert!(inline.run_closure(|| 3).unwrap_err().is_not_portable());
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::{CostModel, Error, Task, TaskRegistry};

/// What the check does with work a worker process could not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Report it once (per task; closure work once per process) and let it run.
    Warn,
    /// Report it once, and fail it every time, under every strategy: a task missing from the
    /// registry with [`ErrorKind::UnknownTask`](crate::ErrorKind::UnknownTask), closure work
    /// with [`ErrorKind::NotPortable`](crate::ErrorKind::NotPortable).
    Strict,
}

/// Work that the check found a worker process could not run, as given to the report function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unportable {
    /// A task that is not in the registry given to [`require`].
    Unregistered {
        /// The task's name.
        task: &'static str,
    },
    /// Closure work ([`Yielder::run`](crate::Yielder::run),
    /// [`Executor::run_closure`](crate::Executor::run_closure)), reported for the first one
    /// yielded in the process.
    Closure {
        /// The closure's type name, which names the function that defines it.
        closure: &'static str,
    },
}

impl fmt::Display for Unportable {
    /// One line that names the work and the fix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unportable::Unregistered { task } => write!(
                f,
                "task `{task}` is not in the `TaskRegistry` given to ythread_executors::init, so \
                 a worker process (subprocess, nats) could not run it; add it to that registry \
                 (`.with({short})`)",
                short = task.rsplit("::").next().unwrap_or(task)
            ),
            Unportable::Closure { closure } => write!(
                f,
                "closure work (`{closure}`) cannot leave this process, so the subprocess and nats \
                 strategies will fail it; define the work with `ythread::task!`, register it, and \
                 yield it with `Yielder::apply` instead of `Yielder::run`"
            ),
        }
    }
}

/// The mode's bits of a stamp.
const MODE_BITS: u32 = 2;
const WARN: u64 = 1;
const STRICT: u64 = 2;

/// 0 while no check is required; otherwise the current check's stamp: a generation, new at
/// each [`require`], above [`MODE_BITS`], and the mode below. A task's verdict is stored with
/// the stamp it was made under, so a later [`require`] makes every verdict stale at once.
static STAMP: AtomicU64 = AtomicU64::new(0);

/// The stamp under which closure work was last reported.
static CLOSURE_REPORTED: AtomicU64 = AtomicU64::new(0);

struct Required {
    stamp: u64,
    registry: TaskRegistry,
    report: fn(&Unportable),
}

/// Read only on the slow paths: once per task, and for work the check reports.
static REQUIRED: RwLock<Option<Required>> = RwLock::new(None);

/// Turns the check on for this process, or replaces the one in force: from now on, work that
/// a worker process serving `registry` could not run is given to `report` the first time it
/// is yielded (once per task, closure work once per process), and in [`Mode::Strict`] it
/// fails. `ythread_executors::init` calls this; a program that does not call `init` has no
/// check. `report` runs on the yielding thread, before the work goes anywhere.
pub fn require(registry: &TaskRegistry, mode: Mode, report: fn(&Unportable)) {
    let mut required = REQUIRED.write();
    let generation = required
        .as_ref()
        .map_or(1, |current| (current.stamp >> MODE_BITS) + 1);
    let mode = match mode {
        Mode::Warn => WARN,
        Mode::Strict => STRICT,
    };
    let stamp = (generation << MODE_BITS) | mode;
    *required = Some(Required {
        stamp,
        registry: registry.clone(),
        report,
    });
    STAMP.store(stamp, Ordering::Release);
}

/// The mode of the check in force, if one is.
pub fn required() -> Option<Mode> {
    match STAMP.load(Ordering::Relaxed) & ((1 << MODE_BITS) - 1) {
        WARN => Some(Mode::Warn),
        STRICT => Some(Mode::Strict),
        _ => None,
    }
}

/// Checks the task `T` before it is yielded: `Err` only in strict mode.
#[inline(always)]
pub(crate) fn check_task<T: Task>() -> Result<(), Error> {
    let stamp = STAMP.load(Ordering::Relaxed);
    if stamp == 0 {
        return Ok(());
    }
    check_model(stamp, T::cost_model(), T::NAME)
}

/// Checks the task `name`, whose cost model is `model`: what [`check_task`] does, for a task
/// known only at run time.
#[inline]
pub(crate) fn check_named(model: &'static CostModel, name: &'static str) -> Result<(), Error> {
    let stamp = STAMP.load(Ordering::Relaxed);
    if stamp == 0 {
        return Ok(());
    }
    check_model(stamp, model, name)
}

#[inline(always)]
fn check_model(stamp: u64, model: &'static CostModel, name: &'static str) -> Result<(), Error> {
    if model.portable.load(Ordering::Relaxed) == registered(stamp) {
        return Ok(());
    }
    check_model_slow(stamp, model, name)
}

fn registered(stamp: u64) -> u64 {
    stamp << 1
}

fn missing(stamp: u64) -> u64 {
    (stamp << 1) | 1
}

#[cold]
#[inline(never)]
fn check_model_slow(
    stamp: u64,
    model: &'static CostModel,
    name: &'static str,
) -> Result<(), Error> {
    if model.portable.load(Ordering::Relaxed) != missing(stamp) {
        let report = {
            let required = REQUIRED.read();
            // A newer `require` raced this yield: its stamp is the one to check under, by the
            // next yield; this one goes by what it read.
            let Some(required) = required.as_ref().filter(|r| r.stamp == stamp) else {
                return Ok(());
            };
            if required.registry.contains(name) {
                model.portable.store(registered(stamp), Ordering::Relaxed);
                return Ok(());
            }
            required.report
        };
        // Of racing first yields, only the one that marks the task reports it.
        if model.portable.swap(missing(stamp), Ordering::Relaxed) != missing(stamp) {
            report(&Unportable::Unregistered { task: name });
        }
    }
    if stamp & STRICT != 0 {
        return Err(Error::unknown_task(
            name,
            "with init() (strict mode: a worker process could not run it)",
        ));
    }
    Ok(())
}

/// Checks the closure work `f` before it is yielded: `Err` only in strict mode.
#[inline(always)]
pub(crate) fn check_closure<F>(_f: &F) -> Result<(), Error> {
    let stamp = STAMP.load(Ordering::Relaxed);
    if stamp == 0 || (stamp & STRICT == 0 && CLOSURE_REPORTED.load(Ordering::Relaxed) == stamp) {
        return Ok(());
    }
    check_closure_slow(stamp, std::any::type_name::<F>())
}

#[cold]
#[inline(never)]
fn check_closure_slow(stamp: u64, closure: &'static str) -> Result<(), Error> {
    if CLOSURE_REPORTED.load(Ordering::Relaxed) != stamp
        && CLOSURE_REPORTED.swap(stamp, Ordering::Relaxed) != stamp
    {
        let report = REQUIRED
            .read()
            .as_ref()
            .filter(|r| r.stamp == stamp)
            .map(|r| r.report);
        if let Some(report) = report {
            report(&Unportable::Closure { closure });
        }
    }
    if stamp & STRICT != 0 {
        return Err(Error::closure_refused(closure));
    }
    Ok(())
}
