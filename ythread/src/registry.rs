//! The task registry: how another process of the same program finds a task by name.
//!
//! The registry is explicit rather than collected by linker magic: `main` lists its tasks once,
//! the same list serves the parent and its workers, and a test can build a registry that
//! differs on purpose. Its [`digest`](TaskRegistry::digest) covers every task's name and the
//! type names of its argument and result, so two processes that would disagree about what a
//! task means refuse to talk at handshake time instead of failing at the first request.

use std::any::type_name;
use std::collections::BTreeMap;
use std::fmt;

use crate::decode::decode;
use crate::encoded::Encoded;
use crate::sink::{ByteSink, encode_to};
use crate::unwind::catch_work;
use crate::{CostModel, Error, Task};

pub(crate) type RunEncoded = fn(Encoded<'_>, &mut dyn ByteSink) -> Result<(), Error>;

#[derive(Clone)]
struct Entry {
    run: RunEncoded,
    cost_model: fn() -> &'static CostModel,
    signature: String,
}

/// What [`TaskRegistry::find`] knows of one task: enough to build a descriptor from bytes.
pub(crate) struct Found {
    pub(crate) name: &'static str,
    pub(crate) run: RunEncoded,
    pub(crate) cost_model: fn() -> &'static CostModel,
}

/// The set of tasks a program can run by name, in this process or in a worker process.
///
/// ```
/// ythread::task!(fn double(x: u64) -> u64 { x * 2 });
/// let tasks = ythread::TaskRegistry::new().with(double);
///
/// let mut reply = Vec::new();
/// let args = postcard::to_stdvec(&21u64).unwrap();
/// tasks.run_encoded(<double as ythread::Task>::NAME, &args, &mut reply).unwrap();
/// assert_eq!(postcard::from_bytes::<u64>(&reply).unwrap(), 42);
/// ```
#[derive(Clone, Default)]
pub struct TaskRegistry {
    tasks: BTreeMap<&'static str, Entry>,
}

impl TaskRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `task` and returns the registry, for chaining.
    #[must_use]
    pub fn with<T: Task>(mut self, task: T) -> Self {
        self.add(task);
        self
    }

    /// Adds `task`. Adding the same task twice is harmless.
    pub fn add<T: Task>(&mut self, _task: T) -> &mut Self {
        let signature = format!(
            "{}({}) -> {}",
            T::NAME,
            type_name::<T::Args>(),
            type_name::<T::Output>()
        );
        self.tasks.insert(
            T::NAME,
            Entry {
                run: run_encoded::<T>,
                cost_model: T::cost_model,
                signature,
            },
        );
        self
    }

    /// Whether a task of that name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.tasks.contains_key(name)
    }

    /// The registered task names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tasks.keys().copied()
    }

    /// How many tasks are registered.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task is registered.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// A 64-bit FNV-1a digest of every task's name and signature, in name order. Two processes
    /// with equal digests agree on what every task name means.
    pub fn digest(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for entry in self.tasks.values() {
            for byte in entry.signature.bytes().chain([0]) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        hash
    }

    /// The cost model of the task `name` (what it has been measured to cost), if registered.
    pub fn cost_model(&self, name: &str) -> Option<&'static CostModel> {
        self.tasks.get(name).map(|entry| (entry.cost_model)())
    }

    /// The task `name`, with its `'static` name, runner and cost model.
    pub(crate) fn find(&self, name: &str) -> Option<Found> {
        self.tasks.get_key_value(name).map(|(name, entry)| Found {
            name,
            run: entry.run,
            cost_model: entry.cost_model,
        })
    }

    /// Runs the task `name` on postcard-encoded `args` and appends its postcard-encoded result
    /// to `out`.
    ///
    /// # Errors
    /// [`ErrorKind::UnknownTask`](crate::ErrorKind::UnknownTask) when `name` is not registered,
    /// [`ErrorKind::Codec`](crate::ErrorKind::Codec) when `args` do not decode or the result
    /// does not encode, and [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) when the task
    /// panics (the panic is caught here).
    pub fn run_encoded(&self, name: &str, args: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.run_encoded_to(name, Encoded::whole(args), out)
    }

    /// [`run_encoded`](Self::run_encoded) on arguments whose large byte strings may have
    /// travelled apart (handed to the task without a copy), writing the encoded result into
    /// any [`ByteSink`] (a shared-memory region, say) instead of a `Vec`.
    ///
    /// # Errors
    /// As [`run_encoded`](Self::run_encoded); a sink that refuses the result makes it a
    /// [`ErrorKind::Codec`](crate::ErrorKind::Codec) error, whose cause the sink knows.
    pub fn run_encoded_to(
        &self,
        name: &str,
        args: Encoded<'_>,
        out: &mut dyn ByteSink,
    ) -> Result<(), Error> {
        let entry = self.tasks.get(name).ok_or_else(|| {
            Error::unknown_task(name, format!("in process {}", std::process::id()))
        })?;
        (entry.run)(args, out)
    }
}

impl fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("tasks", &self.tasks.keys().collect::<Vec<_>>())
            .field("digest", &format_args!("{:016x}", self.digest()))
            .finish()
    }
}

fn run_encoded<T: Task>(args: Encoded<'_>, out: &mut dyn ByteSink) -> Result<(), Error> {
    let args: T::Args = decode(args)
        .map_err(|e| Error::codec(format!("decode the arguments of task `{}`", T::NAME), e))?;
    let output = catch_work(|| format!("task `{}`", T::NAME), || T::run(args))?;
    encode_to(&output, out)
        .map_err(|e| Error::codec(format!("encode the result of task `{}`", T::NAME), e))
}

/// Appends the postcard encoding of `value` to `out`.
pub(crate) fn encode_into<V: serde::Serialize + ?Sized>(
    value: &V,
    out: &mut Vec<u8>,
) -> Result<(), postcard::Error> {
    let taken = std::mem::take(out);
    *out = postcard::to_extend(value, taken)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::task!(
        fn square(x: i64) -> i64 {
            x * x
        }
    );
    crate::task!(
        fn explode(msg: String) -> () {
            panic!("{msg}")
        }
    );
    crate::task!(
        fn pair(a: u8, b: String) -> String {
            format!("{a}{b}")
        }
    );

    #[test]
    fn digest_depends_on_the_task_set_only() {
        let a = TaskRegistry::new().with(square).with(pair);
        let b = TaskRegistry::new().with(pair).with(square).with(square);
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), TaskRegistry::new().with(square).digest());
    }

    #[test]
    fn runs_multi_argument_tasks_from_bytes() {
        let tasks = TaskRegistry::new().with(pair);
        let mut out = Vec::new();
        let args = postcard::to_stdvec(&(4u8, "x".to_string())).unwrap();
        tasks
            .run_encoded(<pair as Task>::NAME, &args, &mut out)
            .unwrap();
        assert_eq!(postcard::from_bytes::<String>(&out).unwrap(), "4x");
    }

    #[test]
    fn unknown_names_and_bad_bytes_are_clear_errors() {
        let tasks = TaskRegistry::new().with(square);
        let err = tasks.run_encoded("nope", &[], &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string().contains("task `nope` is not registered"),
            "{err}"
        );
        let err = tasks
            .run_encoded(<square as Task>::NAME, &[], &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Codec);
        assert!(
            err.to_string().contains("decode the arguments of task"),
            "{err}"
        );
    }

    #[test]
    fn a_panicking_task_reports_its_message() {
        let tasks = TaskRegistry::new().with(explode);
        let args = postcard::to_stdvec(&"kaboom".to_string()).unwrap();
        let err = tasks
            .run_encoded(<explode as Task>::NAME, &args, &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.message(), Some("kaboom"));
    }
}
