//! Named, portable tasks: the unit of CPU work a handler yields.
//!
//! A task is a plain function given a stable name, with a serde argument and result. The
//! in-process strategies call it directly with no serialisation; the subprocess strategy ships
//! the name and the postcard-encoded argument to a worker, which looks the task up in its
//! [`TaskRegistry`](crate::TaskRegistry). The name is the task's module path, so it is the same
//! in every process started from the same binary.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::CostModel;

/// A named function whose argument and result are serde types, so that it can run in this
/// process or in another one.
///
/// Define tasks with [`task!`](crate::task!) rather than by hand. Several arguments travel as
/// one tuple; one argument travels as itself.
pub trait Task: Copy + Send + Sync + 'static {
    /// The stable name: the module path and the function name, as in `my_server::sumn`.
    const NAME: &'static str;
    /// What the function takes (a tuple when it takes several values).
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// What the function returns.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// Runs the function here, on the calling thread.
    fn run(args: Self::Args) -> Self::Output;

    /// The size this call's cost grows with, if the task declares one (`where
    /// cost_grows_with(...)` in [`task!`](crate::task!)); `None` learns the task as one figure.
    #[inline]
    fn size(_args: &Self::Args) -> Option<u64> {
        None
    }

    /// The task's cost model. [`task!`](crate::task!) gives each task a static; the default,
    /// for impls written by hand, finds one by [`NAME`](Task::NAME) under a lock.
    fn cost_model() -> &'static CostModel {
        crate::cost::model_named(Self::NAME)
    }
}

/// Defines a portable [`Task`] from a function in one line.
///
/// The macro turns `fn NAME(ARGS) -> OUT { BODY }` into a unit struct `NAME` that implements
/// [`Task`], so the yield site reads `let total = y.apply(sumn, n)?;`. Call the function
/// directly with `sumn.call(n)`.
///
/// Strategies that schedule learn what each task costs. If the cost grows with one of the
/// arguments, say so after the return type with `where cost_grows_with(EXPR)`: the expression
/// sees the arguments by reference and gives anything [`CostSize`](crate::CostSize) (an integer,
/// a length), and the model then learns the cost per power-of-two size class instead of as one
/// figure, so a small call is not mistaken for a big one. The expression runs on every call,
/// in the handler, before any strategy sees the work: keep it cheap, and make it unable to
/// panic (`saturating_sub`, not `-`).
///
/// ```
/// ythread::task! {
///     /// Sums 1..=n the slow way.
///     pub fn sumn(n: u64) -> u64 {
///         (1..=n).map(std::hint::black_box).sum()
///     }
/// }
/// ythread::task!(fn add(a: u32, b: u32) -> u32 { a + b });
/// ythread::task! {
///     /// Counts the zero bytes: the cost grows with the length.
///     fn zeros(data: Vec<u8>, from: usize) -> usize where cost_grows_with(data.len().saturating_sub(*from)) {
///         data[from..].iter().filter(|&&b| b == 0).count()
///     }
/// }
///
/// use ythread::Task;
/// assert_eq!(sumn.call(4), 10);
/// assert_eq!(<zeros as Task>::size(&(vec![0, 1, 0], 1)), Some(2));
/// assert_eq!(<add as Task>::size(&(2, 3)), None);
/// assert_eq!(add.call(2, 3), 5);
/// assert!(<add as Task>::NAME.ends_with("::add"));
/// ```
#[macro_export]
macro_rules! task {
    ($(#[$meta:meta])* $vis:vis fn $name:ident ($arg:ident : $argty:ty $(,)?) -> $out:ty
        $(where cost_grows_with($size:expr))? $body:block) => {
        $(#[$meta])*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        $vis struct $name;

        impl $name {
            /// Runs the task's function directly on this thread.
            #[allow(dead_code)]
            $vis fn call(self, $arg: $argty) -> $out {
                <Self as $crate::Task>::run($arg)
            }
        }

        impl $crate::Task for $name {
            const NAME: &'static str = concat!(module_path!(), "::", stringify!($name));
            type Args = $argty;
            type Output = $out;
            fn run($arg: $argty) -> $out $body
            #[inline]
            #[allow(unused_variables)]
            fn size($arg: &$argty) -> Option<u64> {
                $crate::__task_size!($($size)?)
            }
            $crate::__task_cost_model!($name);
        }
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident ($($arg:ident : $argty:ty),* $(,)?) -> $out:ty
        $(where cost_grows_with($size:expr))? $body:block) => {
        $(#[$meta])*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        $vis struct $name;

        impl $name {
            /// Runs the task's function directly on this thread.
            #[allow(dead_code, clippy::unused_unit)]
            $vis fn call(self, $($arg: $argty),*) -> $out {
                <Self as $crate::Task>::run(($($arg,)*))
            }
        }

        impl $crate::Task for $name {
            const NAME: &'static str = concat!(module_path!(), "::", stringify!($name));
            type Args = ($($argty,)*);
            type Output = $out;
            #[allow(clippy::unused_unit)]
            fn run(($($arg,)*): ($($argty,)*)) -> $out $body
            #[inline]
            #[allow(unused_variables, clippy::unused_unit)]
            fn size(($($arg,)*): &($($argty,)*)) -> Option<u64> {
                $crate::__task_size!($($size)?)
            }
            $crate::__task_cost_model!($name);
        }
    };
}

/// The declared size of a task made by [`task!`], or `None`; not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __task_size {
    () => {
        None
    };
    ($size:expr) => {
        Some($crate::CostSize::cost_size(&$size))
    };
}

/// The static cost model of a task made by [`task!`]; not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __task_cost_model {
    ($name:ident) => {
        #[inline]
        fn cost_model() -> &'static $crate::CostModel {
            static MODEL: $crate::CostModel = $crate::CostModel::new(<$name as $crate::Task>::NAME);
            &MODEL
        }
    };
}
