//! Section 4, overhead: what one yield of tiny work costs, round trip, per strategy; a direct
//! call of the same function is the floor. Timed in batches (a clock read per call would cost
//! as much as an inline yield); the median batch is reported. A direct call takes well under
//! a nanosecond, so per-call times are kept as fractional nanoseconds: dividing a batch's
//! `Duration` by its size would truncate the floor to zero and make every ratio infinite.

use std::time::{Duration, Instant};

use ythread::{Executor, YieldableThread};
use ythread_suite::tasks::tiny;

use crate::plan::{Plan, Strategy};
use crate::progress::Progress;

/// One strategy's row of the overhead table: the median time of one `y.apply(tiny, x)`.
pub(crate) type Row = crate::plan::Row<Duration>;

/// A batch should take at least this long, so clock reads do not show in the result.
const MIN_BATCH_TIME: Duration = Duration::from_micros(200);

/// A strategy may not answer at all (a broken pool); waiting longer than this is a hang.
const JOIN_SLACK: Duration = Duration::from_secs(30);

pub(crate) fn measure(
    executor: &Executor,
    strategy: &Strategy,
    plan: &Plan,
    progress: &Progress,
) -> Row {
    progress.step(&format!("overhead: {}", strategy.label));
    let budget = plan.overhead_budget;
    let mut handle = YieldableThread::builder()
        .name("overhead".to_owned())
        .spawn(executor, move |y| {
            median_per_call_ns(budget, |x| y.apply(tiny, x).map(|_| ()))
        })
        .expect("could not start the overhead thread; check the thread limits");
    let round_trip = match handle.join_timeout(budget + JOIN_SLACK) {
        Ok(Ok(per_call_ns)) => Ok(Duration::from_secs_f64(per_call_ns / 1e9)),
        Ok(Err(e)) => Err(format!("tiny work failed: {e}")),
        Err(e) => Err(format!("the overhead thread failed: {e}")),
    };
    progress.done();
    Row::new(strategy, round_trip)
}

/// The floor in nanoseconds: the same function called directly, no yield (`black_box` on
/// its argument and result, so the loop cannot be folded away).
pub(crate) fn direct_call_ns(plan: &Plan) -> f64 {
    median_per_call_ns::<()>(plan.overhead_budget, |x| {
        std::hint::black_box(tiny.call(std::hint::black_box(x)));
        Ok(())
    })
    .unwrap_or_default()
}

/// Grows a batch until it takes [`MIN_BATCH_TIME`], then times batches of that size until
/// `budget` is spent; returns the median time per call in (fractional) nanoseconds.
fn median_per_call_ns<E>(
    budget: Duration,
    mut call: impl FnMut(u64) -> Result<(), E>,
) -> Result<f64, E> {
    let start = Instant::now();
    let mut time_batch = |size: u64| -> Result<Duration, E> {
        let began = Instant::now();
        for x in 0..size {
            call(x)?;
        }
        Ok(began.elapsed())
    };
    let mut size: u64 = 1;
    while time_batch(size)? < MIN_BATCH_TIME && size < 1 << 30 {
        size *= 2;
    }
    let mut per_call: Vec<f64> = Vec::new();
    while per_call.len() < 5 || start.elapsed() < budget {
        per_call.push(time_batch(size)?.as_secs_f64() * 1e9 / size as f64);
    }
    per_call.sort_by(f64::total_cmp);
    Ok(per_call[per_call.len() / 2])
}
