//! The rayon strategy: at most N pieces of work run at once on a pool of N threads however many
//! handlers yield, and under enough load all N do; `nice=K` lowers the pool threads' priority
//! and not the handlers'; work that runs work through the same pool does not deadlock.
//!
//! "All N run at once" is shown without timing: the first N pieces of work wait for each other
//! at a rendezvous (bounded), which they can only pass if the pool really runs N at once.

mod support;

use std::sync::{Arc, Barrier};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use support::{BOUND, InFlight, executor, join};
use ythread::YieldableThread;
use ythread_executors::{ExecutorConfig, RayonPool};
use ythread_suite::tasks::{sumn, tiny};

/// A one-shot rendezvous: callers wait until `parties` have arrived, at most [`BOUND`].
struct Rendezvous {
    arrived: Mutex<usize>,
    all_here: Condvar,
    parties: usize,
}

impl Rendezvous {
    fn new(parties: usize) -> Self {
        Rendezvous {
            arrived: Mutex::new(0),
            all_here: Condvar::new(),
            parties,
        }
    }

    /// Arrives and waits for the rest; false if they did not come within [`BOUND`]. Callers
    /// after the first `parties` pass straight through.
    fn arrive_and_wait(&self) -> bool {
        let deadline = Instant::now() + BOUND;
        let mut arrived = self.arrived.lock();
        *arrived += 1;
        if *arrived >= self.parties {
            self.all_here.notify_all();
            return true;
        }
        while *arrived < self.parties {
            if self.all_here.wait_until(&mut arrived, deadline).timed_out() {
                return *arrived >= self.parties;
            }
        }
        true
    }
}

fn pool_of(threads: usize) {
    const HANDLERS: usize = 16;
    const WORKS: u64 = 20;
    let executor = executor(&format!("rayon:{threads}"));
    let in_flight = Arc::new(InFlight::default());
    let rendezvous = Arc::new(Rendezvous::new(threads));
    let start = Arc::new(Barrier::new(HANDLERS));
    let handles: Vec<_> = (0..HANDLERS)
        .map(|_| {
            let (in_flight, rendezvous, start) = (
                Arc::clone(&in_flight),
                Arc::clone(&rendezvous),
                Arc::clone(&start),
            );
            YieldableThread::spawn(&executor, move |y| {
                start.wait();
                for i in 0..WORKS {
                    let met = y
                        .run(|| {
                            in_flight.track(|| {
                                let met = rendezvous.arrive_and_wait();
                                assert_eq!(sumn.call(1_000 + i), sumn.call(1_000 + i));
                                met
                            })
                        })
                        .unwrap();
                    assert!(
                        met,
                        "the pool never ran {} pieces of work at once",
                        rendezvous.parties
                    );
                }
            })
        })
        .collect();
    for handle in handles {
        join(handle).unwrap();
    }
    assert_eq!(in_flight.now(), 0);
    assert_eq!(
        in_flight.max(),
        threads,
        "rayon:{threads} ran {} at once",
        in_flight.max()
    );
}

#[test]
fn a_pool_of_one_runs_one_piece_at_a_time() {
    pool_of(1);
}

#[test]
fn a_pool_of_two_runs_two_pieces_at_a_time_and_never_more() {
    pool_of(2);
}

#[test]
fn a_pool_of_three_runs_three_pieces_at_a_time_and_never_more() {
    pool_of(3);
}

/// The nice value of the calling thread.
fn my_nice() -> i32 {
    // SAFETY: `gettid` has no preconditions. `__errno_location` returns this thread's errno,
    // valid for writes for the thread's lifetime. `getpriority` only reads its integer
    // arguments; a thread id from `gettid` is a valid `PRIO_PROCESS` target on Linux.
    unsafe {
        let tid = libc::gettid();
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        assert_eq!(*libc::__errno_location(), 0, "getpriority failed");
        nice
    }
}

#[test]
fn nice_lowers_the_pool_threads_and_not_the_handler() {
    let executor = executor("rayon:2,nice=10");
    let handle = YieldableThread::spawn(&executor, |y| {
        let before = my_nice();
        let in_work: Vec<i32> = (0..8).map(|_| y.run(my_nice).unwrap()).collect();
        (before, in_work, my_nice())
    });
    let (before, in_work, after) = join(handle).unwrap();
    assert_eq!(before, after, "the handler's own priority changed");
    let expected = nice_granted(10);
    assert!(
        in_work.iter().all(|&n| n == expected),
        "{in_work:?}, expected {expected}"
    );
}

/// The nice value a pool thread gets when it asks for `nice`. Raising the nice value is always
/// allowed; below the process's own it takes privileges (`CAP_SYS_NICE`, e.g. root), without
/// which the thread stays where it was.
fn nice_granted(nice: i32) -> i32 {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root { nice } else { my_nice().max(nice) }
}

/// The calling thread's scheduling policy.
fn my_policy() -> i32 {
    // SAFETY: `sched_getscheduler(0)` reads the calling thread's policy and takes no pointer.
    let policy = unsafe { libc::sched_getscheduler(0) };
    assert!(policy >= 0, "sched_getscheduler failed");
    policy
}

#[test]
fn a_pool_without_nice_or_express_threads_keeps_the_process_priority() {
    let (base, policy) = (my_nice(), my_policy());
    let executor = executor("rayon:2,express=0");
    assert_eq!(
        executor.run_closure(|| (my_nice(), my_policy())).unwrap(),
        (base, policy)
    );
}

#[test]
fn by_default_regular_threads_run_at_nice_10_and_nice_replaces_it() {
    let base = (my_nice(), my_policy());
    let executor = executor("rayon:2");
    let regular = executor.run_closure(|| (my_nice(), my_policy())).unwrap();
    assert_eq!(regular, (nice_granted(10), base.1));
    let executor = self::executor("rayon:2,nice=5");
    let regular = executor.run_closure(|| (my_nice(), my_policy())).unwrap();
    assert_eq!(regular, (nice_granted(5), base.1));
}

#[test]
fn short_work_runs_on_an_express_thread_while_heavy_work_holds_the_pool() {
    // `inline_below=off`, so that the short task is handed to the pool rather than run on the
    // caller's thread: it can only finish while the one regular thread is held if an express
    // thread takes it.
    let executor = executor("rayon:1,inline_below=off");
    for i in 0..20 {
        executor.run(tiny, i).unwrap(); // learned short
    }
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let heavy = {
        let executor = executor.clone();
        std::thread::spawn(move || {
            executor.run_closure(move || {
                started_tx.send(my_nice()).unwrap();
                release_rx.recv_timeout(BOUND).is_ok()
            })
        })
    };
    let nice = started
        .recv_timeout(BOUND)
        .expect("the heavy work never started");
    assert_eq!(nice, nice_granted(10), "heavy work ran on a regular thread");
    let (done_tx, done) = std::sync::mpsc::channel();
    let short = {
        let executor = executor.clone();
        std::thread::spawn(move || done_tx.send(executor.run(tiny, 41)).unwrap())
    };
    let answer = done.recv_timeout(BOUND);
    release.send(()).unwrap();
    let answer = answer.expect("short work waited for the regular thread held by heavy work");
    assert_eq!(answer.unwrap(), tiny.call(41));
    assert!(
        heavy.join().unwrap().unwrap(),
        "the heavy work was released"
    );
    short.join().unwrap();
    let pool = RayonPool::builder().threads(1).build().unwrap();
    assert_eq!((pool.threads(), pool.express_threads()), (1, 1));
}

#[test]
fn the_pool_describes_itself_in_configuration_form() {
    let pool = RayonPool::new(Some(3), Some(5)).unwrap();
    assert_eq!(pool.threads(), 3);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let default: ExecutorConfig = "rayon".parse().unwrap();
    assert_eq!(
        default.build().unwrap().describe(),
        format!("rayon:{cores}")
    );
    assert_eq!(executor("rayon:3,nice=5").describe(), "rayon:3,nice=5");
    assert_eq!(RayonPool::new(None, None).unwrap().threads(), cores);
}

#[test]
fn a_pool_of_zero_threads_or_an_impossible_nice_is_refused() {
    // rayon reads 0 threads as "one per core"; the strategy must not describe itself as
    // `rayon:0` (which does not parse) while running a pool of another size.
    let err = RayonPool::new(Some(0), None).expect_err("a pool of 0 threads");
    assert!(err.is_config(), "{err}");
    let text = err.to_string();
    assert!(text.contains("at least 1"), "{text}");
    assert!(
        !text.ends_with('.') && text.starts_with(char::is_lowercase),
        "{text}"
    );
}

#[test]
fn work_that_runs_work_through_the_same_pool_does_not_deadlock() {
    // With one thread, the nested call must run on the pool thread that is already busy.
    support::assert_nested_work_completes(&executor("rayon:1"));
}
