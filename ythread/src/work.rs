//! Work descriptors: what a handler yields and a strategy runs.
//!
//! A descriptor lives in the yielding handler's stack frame (like rayon's `StackJob`), so a
//! yield allocates nothing. It holds the arguments until a strategy takes them and then the
//! outcome until the handler takes it. Strategies see it only as `&mut dyn Work` and must
//! leave exactly one outcome in it: by running it here ([`Work::run_here`]), by handing back
//! an encoded result ([`Work::complete_encoded`]) or by failing it ([`Work::fail`]).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::decode::decode;
use crate::encoded::Encoded;
use crate::registry::{Found, RunEncoded, encode_into};
use crate::sink::{ByteSink, encode_to};
use crate::unwind::catch_work;
use crate::{CostModel, Error, Executor, Task};

mod sealed {
    pub trait Sealed {}
}

/// A piece of yielded CPU work, as a strategy sees it.
///
/// This trait is sealed: descriptors are made by [`Yielder`](crate::Yielder) and
/// [`Executor::run`](crate::Executor::run), and strategies only consume them.
pub trait Work: Send + sealed::Sealed {
    /// Runs the work on the calling thread and stores its outcome. A panic is caught and
    /// stored as [`ErrorKind::Panicked`](crate::ErrorKind::Panicked).
    fn run_here(&mut self);

    /// The task's name, or `None` for closure work that cannot leave this process.
    fn task_name(&self) -> Option<&'static str>;

    /// Appends the postcard-encoded arguments to `out`.
    ///
    /// # Errors
    /// [`ErrorKind::NotPortable`](crate::ErrorKind::NotPortable) for closure work (the error
    /// names `strategy`), [`ErrorKind::Codec`](crate::ErrorKind::Codec) if encoding fails.
    fn encode_args(&self, strategy: &str, out: &mut Vec<u8>) -> Result<(), Error>;

    /// [`encode_args`](Self::encode_args) into any [`ByteSink`], for a strategy that writes
    /// the arguments straight where they travel.
    ///
    /// # Errors
    /// As [`encode_args`](Self::encode_args); a sink that refuses the bytes makes it a
    /// [`ErrorKind::Codec`](crate::ErrorKind::Codec) error, whose cause the sink knows.
    fn encode_args_to(&self, strategy: &str, out: &mut dyn ByteSink) -> Result<(), Error>;

    /// Decodes `bytes` as the postcard-encoded result and stores it (or a codec error).
    fn complete_encoded(&mut self, bytes: &[u8]) {
        self.complete_pieces(Encoded::whole(bytes));
    }

    /// [`complete_encoded`](Self::complete_encoded) for a result whose large byte strings
    /// travelled apart: they are handed to the result without a copy.
    fn complete_pieces(&mut self, encoded: Encoded<'_>);

    /// Stores `error` as the outcome.
    fn fail(&mut self, error: Error);

    /// The task's cost model, or `None` for closure work, which is never learned.
    fn cost_model(&self) -> Option<&'static CostModel>;

    /// The size the task declared for this call (see [`Task::size`]), if any.
    fn size(&self) -> Option<u64>;

    /// What this work is predicted to cost; `None` if nothing learned applies yet, which
    /// schedulers treat as long. A few nanoseconds: a handful of relaxed atomic loads.
    #[inline]
    fn predicted_cost(&self) -> Option<Duration> {
        self.cost_model()?.predict(self.size())
    }

    /// Teaches the cost model that this work took `elapsed` where it ran (in another process,
    /// say). [`Work::run_here_learning`] does it for work run here.
    #[inline]
    fn learn(&self, elapsed: Duration) {
        if let Some(model) = self.cost_model() {
            model.record(self.size(), elapsed);
        }
    }

    /// [`Work::run_here`], timed (two clock reads), and the time taught to the cost model.
    /// Returns the time it took.
    #[inline]
    fn run_here_learning(&mut self) -> Duration {
        let start = Instant::now();
        self.run_here();
        let elapsed = start.elapsed();
        self.learn(elapsed);
        elapsed
    }
}

/// A named task with its arguments, waiting for a strategy.
pub(crate) struct TaskWork<T: Task> {
    args: Option<T::Args>,
    /// Taken from the arguments up front: they are gone once the work has run or been sent.
    size: Option<u64>,
    outcome: Option<Result<T::Output, Error>>,
}

impl<T: Task> TaskWork<T> {
    #[inline]
    pub(crate) fn new(args: T::Args) -> Self {
        TaskWork {
            size: T::size(&args),
            args: Some(args),
            outcome: None,
        }
    }

    pub(crate) fn into_outcome(self, executor: &Executor) -> Result<T::Output, Error> {
        self.outcome.unwrap_or_else(|| Err(no_outcome(executor)))
    }
}

impl<T: Task> sealed::Sealed for TaskWork<T> {}

impl<T: Task> Work for TaskWork<T> {
    fn run_here(&mut self) {
        let outcome = match self.args.take() {
            Some(args) => catch_work(|| format!("task `{}`", T::NAME), || T::run(args)),
            None => Err(ran_twice(T::NAME)),
        };
        self.outcome = Some(outcome);
    }

    fn task_name(&self) -> Option<&'static str> {
        Some(T::NAME)
    }

    fn encode_args(&self, _strategy: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        let args = self.args.as_ref().ok_or_else(|| ran_twice(T::NAME))?;
        encode(args, out)
            .map_err(|e| Error::codec(format!("encode the arguments of task `{}`", T::NAME), e))
    }

    fn encode_args_to(&self, _strategy: &str, out: &mut dyn ByteSink) -> Result<(), Error> {
        let args = self.args.as_ref().ok_or_else(|| ran_twice(T::NAME))?;
        encode_to(args, out)
            .map_err(|e| Error::codec(format!("encode the arguments of task `{}`", T::NAME), e))
    }

    fn complete_pieces(&mut self, encoded: Encoded<'_>) {
        self.args = None;
        let decoded = decode(encoded)
            .map_err(|e| Error::codec(format!("decode the result of task `{}`", T::NAME), e));
        self.outcome = Some(decoded);
    }

    fn fail(&mut self, error: Error) {
        self.args = None;
        self.outcome = Some(Err(error));
    }

    #[inline]
    fn cost_model(&self) -> Option<&'static CostModel> {
        Some(T::cost_model())
    }

    #[inline]
    fn size(&self) -> Option<u64> {
        self.size
    }
}

fn encode<V: Serialize>(value: &V, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    encode_into(value, out)
}

/// A closure to run in this process, waiting for a strategy.
pub(crate) struct ClosureWork<F, R> {
    f: Option<F>,
    outcome: Option<Result<R, Error>>,
}

impl<F: FnOnce() -> R + Send, R: Send> ClosureWork<F, R> {
    pub(crate) fn new(f: F) -> Self {
        ClosureWork {
            f: Some(f),
            outcome: None,
        }
    }

    pub(crate) fn into_outcome(self, executor: &Executor) -> Result<R, Error> {
        self.outcome.unwrap_or_else(|| Err(no_outcome(executor)))
    }
}

impl<F, R> sealed::Sealed for ClosureWork<F, R> {}

impl<F: FnOnce() -> R + Send, R: Send> Work for ClosureWork<F, R> {
    fn run_here(&mut self) {
        let outcome = match self.f.take() {
            Some(f) => catch_work(|| "closure work".to_owned(), f),
            None => Err(ran_twice("closure work")),
        };
        self.outcome = Some(outcome);
    }

    fn task_name(&self) -> Option<&'static str> {
        None
    }

    fn encode_args(&self, strategy: &str, _out: &mut Vec<u8>) -> Result<(), Error> {
        Err(Error::not_portable(strategy))
    }

    fn encode_args_to(&self, strategy: &str, _out: &mut dyn ByteSink) -> Result<(), Error> {
        Err(Error::not_portable(strategy))
    }

    fn complete_pieces(&mut self, _encoded: Encoded<'_>) {
        self.fail(Error::codec(
            "decode the result of closure work",
            "closure work has no encoded form",
        ));
    }

    fn fail(&mut self, error: Error) {
        self.f = None;
        self.outcome = Some(Err(error));
    }

    fn cost_model(&self) -> Option<&'static CostModel> {
        None
    }

    fn size(&self) -> Option<u64> {
        None
    }
}

/// A task known only by name, with encoded arguments, whose encoded result goes to `out`:
/// what a process that serves work for others (a `nats` worker node) hands its own strategy.
/// A strategy that runs it here decodes and runs the task; one that sends it elsewhere (a
/// subprocess pool) forwards the bytes untouched, and the result comes back untouched too.
pub(crate) struct EncodedWork<'a> {
    task: Found,
    args: Option<&'a [u8]>,
    out: &'a mut Vec<u8>,
    outcome: Option<Result<(), Error>>,
}

impl<'a> EncodedWork<'a> {
    pub(crate) fn new(task: Found, args: &'a [u8], out: &'a mut Vec<u8>) -> Self {
        EncodedWork {
            task,
            args: Some(args),
            out,
            outcome: None,
        }
    }

    pub(crate) fn into_outcome(self, executor: &Executor) -> Result<(), Error> {
        self.outcome.unwrap_or_else(|| Err(no_outcome(executor)))
    }
}

impl sealed::Sealed for EncodedWork<'_> {}

impl Work for EncodedWork<'_> {
    fn run_here(&mut self) {
        let run: RunEncoded = self.task.run;
        let outcome = match self.args.take() {
            Some(args) => run(Encoded::whole(args), self.out),
            None => Err(ran_twice(self.task.name)),
        };
        self.outcome = Some(outcome);
    }

    fn task_name(&self) -> Option<&'static str> {
        Some(self.task.name)
    }

    fn encode_args(&self, _strategy: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        let args = self.args.ok_or_else(|| ran_twice(self.task.name))?;
        out.extend_from_slice(args);
        Ok(())
    }

    fn encode_args_to(&self, _strategy: &str, out: &mut dyn ByteSink) -> Result<(), Error> {
        let args = self.args.ok_or_else(|| ran_twice(self.task.name))?;
        out.put(args).map_err(|_| {
            Error::codec(
                format!("pass on the arguments of task `{}`", self.task.name),
                "the destination refused them (over its size limit)",
            )
        })
    }

    fn complete_pieces(&mut self, encoded: Encoded<'_>) {
        self.args = None;
        encoded.append_to(self.out);
        self.outcome = Some(Ok(()));
    }

    fn fail(&mut self, error: Error) {
        self.args = None;
        self.outcome = Some(Err(error));
    }

    #[inline]
    fn cost_model(&self) -> Option<&'static CostModel> {
        Some((self.task.cost_model)())
    }

    /// Unknown: a task's size is computed from decoded arguments, and this work keeps them
    /// encoded so that a strategy that forwards them never decodes them.
    fn size(&self) -> Option<u64> {
        None
    }
}

fn ran_twice(what: &str) -> Error {
    Error::unavailable(format!(
        "{what} was handed to a strategy twice; this is a bug in the strategy, please report it"
    ))
}

fn no_outcome(executor: &Executor) -> Error {
    Error::unavailable(format!(
        "the {} strategy returned without running or failing the work; this is a bug in \
         the strategy, please report it",
        executor.describe()
    ))
}
