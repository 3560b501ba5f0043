//! Named, portable tasks: the unit of CPU work a handler yields.
//!
//! A task is a plain function given a stable name, with a serde argument and result. The
//! in-process strategies call it directly with no serialisation; the subprocess strategy ships
//! the name and the postcard-encoded argument to a worker, which looks the task up in its
//! [`TaskRegistry`](crate::TaskRegistry). The name is the task's module path, so it is the same
//! in every process started from the same binary.

use serde::Serialize;
use serde::de::DeserializeOwned;

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
}

/// Defines a portable [`Task`] from a function in one line.
///
/// The macro turns `fn NAME(ARGS) -> OUT { BODY }` into a unit struct `NAME` that implements
/// [`Task`], so the yield site reads `let total = y.apply(sumn, n)?;`. Call the function
/// directly with `sumn.call(n)`.
///
/// ```
/// ythread::task! {
///     /// Sums 1..=n the slow way.
///     pub fn sumn(n: u64) -> u64 {
///         (1..=n).map(std::hint::black_box).sum()
///     }
/// }
/// ythread::task!(fn add(a: u32, b: u32) -> u32 { a + b });
///
/// assert_eq!(sumn.call(4), 10);
/// assert_eq!(add.call(2, 3), 5);
/// assert!(<add as ythread::Task>::NAME.ends_with("::add"));
/// ```
#[macro_export]
macro_rules! task {
    ($(#[$meta:meta])* $vis:vis fn $name:ident ($arg:ident : $argty:ty $(,)?) -> $out:ty $body:block) => {
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
        }
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident ($($arg:ident : $argty:ty),* $(,)?) -> $out:ty $body:block) => {
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
        }
    };
}
