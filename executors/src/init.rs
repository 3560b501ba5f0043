//! [`init`]: the one entry point of the processes this crate starts, and [`WORKER_ENV`].
//!
//! A program that may use the subprocess or nats strategies is also their worker: a pool
//! starts it again as a worker process (with the subprocess marker in its environment), and an
//! operator starts it as a nats worker node (with [`WORKER_ENV`]). `init` decides which of the
//! three the process is, at the very top, and hands over to that role's code; everything below
//! it gets its settings as plain values. This is why it lives above the configuration: a node
//! builds its own local strategy from `YTHREAD_EXECUTOR`, which only the configuration can
//! parse, and the strategies must not import the configuration that picks them.
//!
//! Every exit status of a process that `init` does not return from, in one table:
//!
//! | status | role | meaning |
//! |---|---|---|
//! | 0 | both | the pool closed the worker's socket; the node drained and stopped |
//! | 90 | subprocess worker | its start-up marker does not parse |
//! | 91 | subprocess worker | its parent was gone before it could tie its life to it |
//! | 92 | subprocess worker | it could not take its regions or socket, reach the pool or read a job, or the pool broke the protocol |
//! | 93 | subprocess worker | it could not set its memory limit |
//! | 93 | nats node | its configuration is bad: [`WORKER_ENV`], `YTHREAD_EXECUTOR`, or a local strategy that does not start |
//! | 94 | nats node | its runtime did not start, or it could not connect to the nats server or subscribe |
//! | 95 | nats node | the program was built without the `nats` feature |
//! | 96 | nats node | jobs were still running at the drain bound, or at a second signal (`nats::EXIT_ABANDONED`) |
//!
//! 93 means one thing for each role, and each role reports it on stderr with its own prefix
//! (`ythread worker process PID:` or `ythread node HOST:PID:`); the values stay as they were
//! when the two were defined apart, because scripts and supervisors may already read them.

use ythread::TaskRegistry;

use crate::role;
use crate::subprocess::worker;

/// The environment variable that makes [`init`] serve as a worker node of the `nats`
/// strategy: `YTHREAD_WORKER=nats://HOST:PORT[,subject=PREFIX]`.
pub const WORKER_ENV: &str = "YTHREAD_WORKER";

/// Exit status of a node whose configuration is bad.
#[cfg(feature = "nats")]
const EXIT_BAD_CONFIG: i32 = 93;

/// Exit status of a program asked to be a worker node without the `nats` feature.
#[cfg(not(feature = "nats"))]
const EXIT_NO_NATS: i32 = 95;

/// Call first in `main`. In a worker process it serves tasks from `registry` and never
/// returns; in any other process it records `registry` as the default for subprocess pools
/// and returns at once.
///
/// With [`WORKER_ENV`] set (`YTHREAD_WORKER=nats://HOST:PORT`), the process is a worker node
/// of the `nats` strategy instead: it serves `registry`'s tasks from that broker through its
/// own local strategy (`YTHREAD_EXECUTOR`) until SIGTERM, then drains and exits 0, without
/// returning.
///
/// Workers are this program started again, so everything `main` does before `init` also runs
/// in every worker: keep it to nothing, or to what workers need too (logging set-up).
///
/// ```no_run
/// ythread::task!(fn square(x: u64) -> u64 { x * x });
///
/// fn main() {
///     ythread_executors::init(ythread::TaskRegistry::new().with(square));
///     // ... only the parent gets here ...
/// }
/// ```
///
/// In the program's own process, `init` also turns on the check that reports work a worker
/// could not run (a task missing from `registry`, closure work) the first time it is yielded,
/// under every strategy, as a `tracing` warning (target `ythread::mistakes`); with
/// `YTHREAD_STRICT=1` such work fails at once instead (see [`init_strict`]). And it warns,
/// on stderr if no `tracing` subscriber listens, if other threads already run: a runtime
/// started before `init` (`#[tokio::main]`) is started again in every worker.
pub fn init(registry: TaskRegistry) {
    init_checked(registry, false);
}

/// [`init`] in strict mode, whatever `YTHREAD_STRICT` says: in the program's own process,
/// yielding a task that is not in `registry`, or closure work (`y.run`), fails at once under
/// every strategy, with [`ErrorKind::UnknownTask`](ythread::ErrorKind::UnknownTask) or
/// [`ErrorKind::NotPortable`](ythread::ErrorKind::NotPortable), instead of only once the
/// program runs under `subprocess` or `nats`. For tests and debug builds:
///
/// ```no_run
/// ythread::task!(fn square(x: u64) -> u64 { x * x });
///
/// fn main() {
///     let registry = ythread::TaskRegistry::new().with(square);
///     if cfg!(debug_assertions) {
///         ythread_executors::init_strict(registry);
///     } else {
///         ythread_executors::init(registry);
///     }
/// }
/// ```
pub fn init_strict(registry: TaskRegistry) {
    init_checked(registry, true);
}

fn init_checked(registry: TaskRegistry, strict: bool) {
    role::set_registry(registry.clone());
    if let Some(code) = worker::serve_if_worker(&registry) {
        std::process::exit(code);
    }
    if let Some(node) = std::env::var_os(WORKER_ENV) {
        std::process::exit(serve_node(&node.to_string_lossy(), &registry));
    }
    crate::mistakes::check_from_init(&registry, strict);
}

/// The configuration half of a node's start-up: reads [`WORKER_ENV`] (`value`) and the node's
/// local strategy from `YTHREAD_EXECUTOR`, starts that strategy, then serves; returns the exit
/// status.
#[cfg(feature = "nats")]
fn serve_node(value: &str, registry: &TaskRegistry) -> i32 {
    use crate::nats::node::{self, LocalStrategy};
    use crate::{ENV_VAR, ExecutorConfig, NatsConfig};

    let who = node::this_node();
    let complain = |why: &str| node::complain(&who, EXIT_BAD_CONFIG, why);
    let config = match value.trim().strip_prefix("nats://").map(NatsConfig::parse) {
        Some(Ok(config)) => config,
        Some(Err(why)) => return complain(&format!("{WORKER_ENV} is invalid: {why}")),
        None => {
            return complain(&format!(
                "{WORKER_ENV} is `{value}`, not nats://HOST:PORT[,subject=PREFIX]"
            ));
        }
    };
    let local = match ExecutorConfig::from_env() {
        Ok(ExecutorConfig::Nats(_)) => {
            return complain(&format!(
                "a node's own strategy cannot be nats; set {ENV_VAR} to inline, rayon:N or \
                 subprocess:N"
            ));
        }
        Ok(local) => local,
        Err(e) => return complain(&e.to_string()),
    };
    let executor = match local.build() {
        Ok(executor) => executor,
        Err(e) => return complain(&format!("its strategy did not start: {e}")),
    };
    // The text is the configuration as given, not `Executor::describe`, which resolves
    // defaults (`rayon` would read `rayon:8`): the banner and `NodeStatus::strategy` say what
    // the operator wrote.
    let local = LocalStrategy {
        executor,
        capacity: local.parallelism(),
        inline: matches!(local, ExecutorConfig::Inline),
        text: local.to_string(),
    };
    node::serve(who, config, local, registry)
}

#[cfg(not(feature = "nats"))]
fn serve_node(_value: &str, _registry: &TaskRegistry) -> i32 {
    eprintln!(
        "ythread worker process {}: {WORKER_ENV} is set, but this program was built without the \
         `nats` feature of ythread-executors; rebuild with it, or unset {WORKER_ENV}; exiting",
        std::process::id()
    );
    EXIT_NO_NATS
}
