//! Handler threads are reused: a finished handler's OS thread parks and runs the next handler
//! that fits (same name, same OS stack size), gets that handler's name, keeps its
//! thread-locals, and retires after its idle timeout; at most `MAX_PARKED_THREADS` park.
//!
//! Each test that checks *which* thread runs a handler uses a name or an OS stack size of its
//! own, so that the tests running in parallel never take each other's parked threads, and
//! parks its threads for good (`kept`), so that none retires while the test runs, however
//! slow the machine.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use support::{BOUND, in_process_executors, is_child, join, recv, run_child_test};
use ythread::{Builder, Executor, MAX_PARKED_THREADS, YieldableThread};
use ythread_suite::tasks::sumn;

/// The kernel's name of the calling thread.
fn os_name() -> String {
    std::fs::read_to_string("/proc/thread-self/comm")
        .expect("/proc/thread-self/comm is readable")
        .trim_end()
        .to_owned()
}

/// Renames the calling thread behind ythread's back, as a handler may.
fn scribble_os_name() {
    std::fs::write("/proc/thread-self/comm", "scribbled").expect("a thread may rename itself");
    assert_eq!(os_name(), "scribbled");
}

/// A builder whose thread stays parked until a handler comes.
fn kept() -> Builder {
    YieldableThread::builder().idle_timeout(Duration::MAX)
}

/// An OS thread stack size no other test asks for: 2 MiB plus `pages` pages.
fn own_stack_size(pages: usize) -> usize {
    (2 << 20) + pages * 4096
}

/// Runs `f` as a handler built by `builder` and returns its result and thread.
fn run_on<T: Send + 'static>(
    builder: Builder,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, ThreadId) {
    let handle = builder
        .spawn(&Executor::inline(), move |y| {
            y.apply(sumn, 10).unwrap();
            (f(), thread::current().id())
        })
        .unwrap();
    let reported = handle
        .thread()
        .expect("a running handler has a thread")
        .id();
    let (value, ran_on) = join(handle).unwrap();
    assert_eq!(
        reported, ran_on,
        "JoinHandle::thread is the handler's thread"
    );
    (value, ran_on)
}

#[test]
fn a_second_handler_runs_on_the_thread_of_a_finished_one() {
    let builder = || kept().name("reuse-second");
    let ((), first) = run_on(builder(), || ());
    let ((), second) = run_on(builder(), || ());
    assert_eq!(first, second);

    // A handler that panicked leaves its thread fit for the next one.
    let handle = builder()
        .spawn(&Executor::inline(), |_| -> ThreadId {
            panic!("on purpose")
        })
        .unwrap();
    assert!(join(handle).unwrap_err().is_panic());
    let ((), after_panic) = run_on(builder(), || ());
    assert_eq!(after_panic, first);
}

#[test]
fn every_strategy_runs_handlers_on_reused_threads() {
    for (config, executor) in in_process_executors() {
        let name = format!("reuse-{}", config.replace([':', ',', '='], "-"));
        let spawn = || {
            let handle = kept()
                .name(&name)
                .spawn(&executor, |y| {
                    assert_eq!(y.apply(sumn, 100).unwrap(), 5050);
                    thread::current().id()
                })
                .unwrap();
            join(handle).unwrap()
        };
        assert_eq!(spawn(), spawn(), "{config}");
    }
}

#[test]
fn the_name_is_applied_again_on_reuse() {
    let builder = || kept().name("reuse-rename");
    let ((), first) = run_on(builder(), scribble_os_name);
    let ((os, std_name), second) = run_on(builder(), || {
        (os_name(), thread::current().name().map(str::to_owned))
    });
    assert_eq!(first, second, "the thread was reused");
    assert_eq!(os, "reuse-rename");
    assert_eq!(std_name.as_deref(), Some("reuse-rename"));
}

#[test]
fn an_unnamed_handler_does_not_keep_the_name_a_previous_one_left() {
    let builder = || kept().thread_stack_size(own_stack_size(1));
    let ((), first) = run_on(builder(), scribble_os_name);
    let ((os, std_name), second) = run_on(builder(), || {
        (os_name(), thread::current().name().map(str::to_owned))
    });
    assert_eq!(first, second, "the thread was reused");
    assert_eq!(os, "ythread");
    assert_eq!(std_name, None);
}

#[test]
fn a_long_name_is_truncated_for_the_kernel_only() {
    const NAME: &str = "reuse-a-rather-long-handler-name";
    for _ in 0..2 {
        let ((os, std_name), _) = run_on(kept().name(NAME), || {
            (os_name(), thread::current().name().map(str::to_owned))
        });
        assert_eq!(os, &NAME[..15]);
        assert_eq!(std_name.as_deref(), Some(NAME));
    }
}

#[test]
fn a_name_with_a_nul_byte_is_an_error_not_a_panic() {
    let error = YieldableThread::builder()
        .name("bad\0name")
        .spawn(&Executor::inline(), |_| ())
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("NUL"), "{error}");
}

#[test]
fn a_different_os_stack_size_gets_a_fresh_thread() {
    let sized = |pages| kept().thread_stack_size(own_stack_size(pages));
    let ((), first) = run_on(sized(2), || ());
    let ((), other_size) = run_on(sized(3), || ());
    assert_ne!(first, other_size);
    let ((), same_size) = run_on(sized(2), || ());
    assert_eq!(
        first, same_size,
        "the first thread stayed parked for its size"
    );
}

/// Sets its flag when dropped: tells when a thread's thread-locals were destroyed.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

thread_local! {
    static ON_EXIT: RefCell<Option<SetOnDrop>> = const { RefCell::new(None) };
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

#[test]
fn opting_out_gets_a_fresh_thread_that_has_exited_when_join_returns() {
    let builder = || kept().name("reuse-opt-out");
    let ((), parked) = run_on(builder(), || ());
    let exited = Arc::new(AtomicBool::new(false));
    let ((), own) = run_on(builder().reuse_thread(false), {
        let exited = Arc::clone(&exited);
        move || ON_EXIT.with(|slot| *slot.borrow_mut() = Some(SetOnDrop(exited)))
    });
    assert_ne!(own, parked, "an opted-out handler gets a thread of its own");
    assert!(
        exited.load(Ordering::SeqCst),
        "join returned before the opted-out thread's thread-locals were dropped"
    );
    let ((), again) = run_on(builder(), || ());
    assert_eq!(again, parked, "the parked thread was left alone");
}

#[test]
fn thread_locals_outlive_a_handler_on_a_reused_thread() {
    let builder = || kept().name("reuse-thread-locals");
    let ((), first) = run_on(builder(), || COUNTER.with(|c| c.set(41)));
    let (seen, second) = run_on(builder(), || COUNTER.with(Cell::get));
    assert_eq!(first, second);
    assert_eq!(
        seen, 41,
        "documented: a thread-local is the thread's, not the handler's"
    );
}

/// Sends when dropped: tells the test that a thread exited.
struct SendOnDrop(mpsc::Sender<()>);

impl Drop for SendOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    static EXIT_SIGNAL: RefCell<Option<SendOnDrop>> = const { RefCell::new(None) };
}

#[test]
fn an_idle_thread_retires_after_its_idle_timeout() {
    let builder = || {
        YieldableThread::builder()
            .name("reuse-retire")
            .idle_timeout(Duration::ZERO)
    };
    let (exited_tx, exited) = mpsc::channel();
    let ((), first) = run_on(builder(), move || {
        EXIT_SIGNAL.with(|slot| *slot.borrow_mut() = Some(SendOnDrop(exited_tx)));
    });
    recv(&exited, "the idle thread to retire");
    let ((), second) = run_on(builder(), || ());
    assert_ne!(
        first, second,
        "a retired thread cannot run the next handler"
    );
}

#[test]
fn many_handlers_at_once_all_complete() {
    const HANDLERS: u64 = 64;
    for (config, executor) in in_process_executors() {
        let handles: Vec<_> = (0..HANDLERS)
            .map(|i| {
                YieldableThread::spawn(&executor, move |y| {
                    (0..20).map(|k| y.apply(sumn, i + k).unwrap()).sum::<u64>()
                })
            })
            .collect();
        for (i, handle) in (0..HANDLERS).zip(handles) {
            let expected: u64 = (0..20).map(|k| sumn.call(i + k)).sum();
            assert_eq!(join(handle).unwrap(), expected, "{config}");
        }
    }
}

const CAP_CHILD: &str = "YTHREAD_TEST_PARKED_CAP_CHILD";

#[test]
fn parked_cap_child() {
    if !is_child(CAP_CHILD) {
        return; // only meaningful in the child process the test below starts
    }
    // More handlers than may park, all running at once, so each has a thread of its own.
    let handlers = MAX_PARKED_THREADS + 8;
    let gate = Arc::new(RwLock::new(()));
    let closed = gate.write();
    let started = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..handlers)
        .map(|_| {
            let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
            let builder = kept();
            let handler = move |_: &ythread::Yielder<'_>| {
                started.fetch_add(1, Ordering::SeqCst);
                let open = gate.try_read_for(BOUND).is_some();
                (open, thread::current().id())
            };
            builder.spawn(&Executor::inline(), handler).unwrap()
        })
        .collect();
    let deadline = Instant::now() + BOUND;
    while started.load(Ordering::SeqCst) < handlers {
        assert!(Instant::now() < deadline, "not every handler started");
        thread::yield_now();
    }
    drop(closed);
    let threads: HashSet<ThreadId> = handles
        .into_iter()
        .map(|handle| {
            let (open, thread) = join(handle).unwrap();
            assert!(open, "a handler timed out at the gate");
            thread
        })
        .collect();
    assert_eq!(threads.len(), handlers, "the handlers ran at once");
    // Every one of them parked on its way out; those beyond the cap made the oldest retire.
    assert_eq!(ythread::parked_threads(), MAX_PARKED_THREADS);
}

#[test]
fn parked_threads_are_capped() {
    // In a child process: hundreds of parked threads would crowd out the other tests'.
    run_child_test("parked_cap_child", CAP_CHILD).assert_passed();
}
