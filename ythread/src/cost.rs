//! The cost model of each task; see [`CostModel`] for how it learns and predicts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Size classes of a declared size: class 0 holds size 0, class k holds `2^(k-1)..2^k`.
const SIZE_CLASSES: usize = 65;

/// The class of work whose task declares no size.
const UNSIZED: usize = SIZE_CLASSES;

/// How many classes below an unseen size a learned class may be and still predict it.
pub(crate) const EXTRAPOLATE_CLASSES: usize = 3;

/// A new run moves an estimate by `1 / DECAY` of the difference (after the first `DECAY` runs).
const DECAY: u64 = 8;

/// Once a class has `DECAY` runs, a sample counts for at most this many times its estimate.
const OUTLIER: u64 = 4;

/// No id assigned yet.
const NO_ID: usize = usize::MAX;

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// One size class: its estimate and how many runs made it.
struct Class {
    /// Estimated nanoseconds; 0 means never run.
    estimate: AtomicU64,
    runs: AtomicU64,
}

impl Class {
    const fn new() -> Self {
        Class {
            estimate: AtomicU64::new(0),
            runs: AtomicU64::new(0),
        }
    }

    fn estimate(&self) -> Option<u64> {
        match self.estimate.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(nanos),
        }
    }

    fn record(&self, nanos: u64) {
        let runs = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let old = self.estimate.load(Ordering::Relaxed);
        // Timing noise only ever adds time (a preempted run), so once the estimate has a few
        // runs behind it a sample counts for at most `OUTLIER` times the estimate.
        let nanos = if runs > DECAY && old > 0 {
            nanos.min(old.saturating_mul(OUTLIER))
        } else {
            nanos
        };
        let weight = runs.min(DECAY);
        let new = if old == 0 {
            nanos
        } else if nanos >= old {
            old + (nanos - old) / weight
        } else {
            old - (old - nanos) / weight
        };
        self.estimate.store(new.max(1), Ordering::Relaxed);
    }
}

/// What one task has cost so far, so that strategies can predict its next call.
///
/// Every task has one [`CostModel`], a static made by [`task!`](crate::task!). Strategies that
/// schedule time the work they run (two clock reads around it) and record the time here; they
/// ask for a prediction before they decide where and in what order work runs.
///
/// A task that declares the size its cost grows with (`where cost_grows_with(n)` in
/// `task!`) is learned per power-of-two size class: sizes 1, 2-3, 4-7, ... each keep their own
/// estimate, so `sumn(10)` and `sumn(10_000_000)` are told apart. A task without a declared size
/// is learned as one figure. Each estimate is an exponentially weighted moving average with
/// weight 1/8 for a new run (the first runs are averaged evenly), so it follows drift within a
/// few dozen runs. Timing noise is one-sided (a preempted run only takes longer), so once a
/// class has 8 runs a sample counts for at most 4 times the estimate: one preempted run moves
/// it by at most 3/8, and a real rise is followed at 1.375 times per run.
///
/// Predictions for a size class never run: the nearest learned class *above* it, since cost
/// does not shrink as size grows, an upper bound is safe to schedule by; failing that, the
/// nearest learned class up to three classes below it, scaled linearly. Anything
/// else, and any task never run, is *unknown*, which schedulers treat as long.
///
/// Trade-off: a few relaxed atomic loads per prediction and a load and a store per recorded
/// run, no lock and no allocation; concurrent records of the same class may lose one of the two
/// updates, which an average of noisy timings does not notice.
pub struct CostModel {
    name: &'static str,
    id: AtomicUsize,
    /// Whether the task is in the registry worker processes serve, as last checked, under
    /// which check (see `portable.rs`); 0 until checked.
    pub(crate) portable: AtomicU64,
    classes: [Class; SIZE_CLASSES + 1],
}

/// What a model has learned about one size class, for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LearnedCost {
    /// The sizes of the class, both ends included; `None` for a task without a declared size.
    pub sizes: Option<(u64, u64)>,
    /// The current estimate of one run.
    pub cost: Duration,
    /// How many runs it was learned from.
    pub runs: u64,
}

impl CostModel {
    /// An empty model for the task `name`. Made by [`task!`](crate::task!) as a static.
    pub const fn new(name: &'static str) -> Self {
        CostModel {
            name,
            id: AtomicUsize::new(NO_ID),
            portable: AtomicU64::new(0),
            classes: [const { Class::new() }; SIZE_CLASSES + 1],
        }
    }

    /// The task's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A small number unique to this model in this process (0, 1, 2, ... in order of first
    /// use), for strategies that keep per-task counters in a table.
    pub fn id(&self) -> usize {
        let id = self.id.load(Ordering::Relaxed);
        if id != NO_ID {
            return id;
        }
        let fresh = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        match self
            .id
            .compare_exchange(NO_ID, fresh, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => fresh,
            Err(taken) => taken,
        }
    }

    /// The predicted cost of one run at `size` (`None`: the task declares no size), or `None`
    /// when nothing learned applies: work never seen counts as long.
    #[inline]
    pub fn predict(&self, size: Option<u64>) -> Option<Duration> {
        self.predict_nanos(size).map(Duration::from_nanos)
    }

    fn predict_nanos(&self, size: Option<u64>) -> Option<u64> {
        let Some(size) = size else {
            return self.classes[UNSIZED].estimate();
        };
        let class = class_of(size);
        if let Some(nanos) = self.classes[class].estimate() {
            return Some(nanos);
        }
        if let Some(above) = self.classes[class + 1..SIZE_CLASSES]
            .iter()
            .find_map(Class::estimate)
        {
            return Some(above);
        }
        (1..=EXTRAPOLATE_CLASSES.min(class)).find_map(|below| {
            self.classes[class - below]
                .estimate()
                .map(|nanos| nanos.saturating_mul(1 << below))
        })
    }

    /// Records that one run at `size` took `elapsed`.
    #[inline]
    pub fn record(&self, size: Option<u64>, elapsed: Duration) {
        let class = size.map_or(UNSIZED, class_of);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.classes[class].record(nanos);
    }

    /// Every class learned so far, smallest sizes first.
    pub fn learned(&self) -> Vec<LearnedCost> {
        self.classes
            .iter()
            .enumerate()
            .filter_map(|(class, c)| {
                let cost = Duration::from_nanos(c.estimate()?);
                Some(LearnedCost {
                    sizes: (class != UNSIZED).then(|| sizes_of(class)),
                    cost,
                    runs: c.runs.load(Ordering::Relaxed),
                })
            })
            .collect()
    }
}

impl std::fmt::Debug for CostModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CostModel")
            .field("name", &self.name)
            .field("learned", &self.learned())
            .finish()
    }
}

fn class_of(size: u64) -> usize {
    (u64::BITS - size.leading_zeros()) as usize
}

fn sizes_of(class: usize) -> (u64, u64) {
    match class {
        0 => (0, 0),
        64 => (1 << 63, u64::MAX),
        k => (1 << (k - 1), (1 << k) - 1),
    }
}

/// The model of a task whose [`Task`](crate::Task) impl was written by hand, found by name.
/// `task!` gives each task a static instead, which costs no lookup.
pub(crate) fn model_named(name: &'static str) -> &'static CostModel {
    static MODELS: OnceLock<Mutex<HashMap<&'static str, &'static CostModel>>> = OnceLock::new();
    let mut models = MODELS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    models
        .entry(name)
        .or_insert_with(|| Box::leak(Box::new(CostModel::new(name))))
}

/// What a task's cost grows with, as a number: the value of an integer, the length of a string,
/// slice or vector. Used by `where cost_grows_with(...)` in [`task!`](crate::task!); implement
/// it for your own argument types to declare them as sizes.
pub trait CostSize {
    /// The size, in whatever unit the cost grows with.
    fn cost_size(&self) -> u64;
}

macro_rules! unsigned_size {
    ($($t:ty),*) => {$(
        impl CostSize for $t {
            #[inline]
            fn cost_size(&self) -> u64 {
                u64::try_from(*self).unwrap_or(u64::MAX)
            }
        }
    )*};
}
unsigned_size!(u8, u16, u32, u64, u128, usize);

macro_rules! signed_size {
    ($($t:ty),*) => {$(
        impl CostSize for $t {
            #[inline]
            fn cost_size(&self) -> u64 {
                u64::try_from(self.unsigned_abs()).unwrap_or(u64::MAX)
            }
        }
    )*};
}
signed_size!(i8, i16, i32, i64, i128, isize);

impl CostSize for str {
    #[inline]
    fn cost_size(&self) -> u64 {
        self.len() as u64
    }
}

impl CostSize for String {
    #[inline]
    fn cost_size(&self) -> u64 {
        self.len() as u64
    }
}

impl<T> CostSize for [T] {
    #[inline]
    fn cost_size(&self) -> u64 {
        self.len() as u64
    }
}

impl<T> CostSize for Vec<T> {
    #[inline]
    fn cost_size(&self) -> u64 {
        self.len() as u64
    }
}

impl<T: CostSize + ?Sized> CostSize for &T {
    #[inline]
    fn cost_size(&self) -> u64 {
        (**self).cost_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn sizes_fall_into_power_of_two_classes() {
        assert_eq!(class_of(0), 0);
        assert_eq!(class_of(1), 1);
        assert_eq!(class_of(3), 2);
        assert_eq!(class_of(4), 3);
        assert_eq!(class_of(u64::MAX), 64);
        for class in 0..SIZE_CLASSES {
            let (low, high) = sizes_of(class);
            assert_eq!((class_of(low), class_of(high)), (class, class));
        }
    }

    #[test]
    fn never_seen_is_unknown_and_a_first_run_is_taken_as_it_is() {
        let model = CostModel::new("t");
        assert_eq!(model.predict(Some(10)), None);
        assert_eq!(model.predict(None), None);
        model.record(Some(10), 3 * MS);
        assert_eq!(model.predict(Some(10)), Some(3 * MS));
        assert_eq!(model.predict(None), None, "sized and unsized are apart");
    }

    #[test]
    fn unseen_sizes_borrow_from_above_or_scale_from_just_below() {
        let model = CostModel::new("t");
        model.record(Some(1 << 20), 8 * MS);
        assert_eq!(model.predict(Some(5)), Some(8 * MS), "an upper bound");
        assert_eq!(model.predict(Some(1 << 21)), Some(16 * MS));
        assert_eq!(model.predict(Some(1 << 23)), Some(64 * MS));
        assert_eq!(model.predict(Some(1 << 24)), None, "too far to guess");
    }

    #[test]
    fn estimates_follow_a_change_in_cost() {
        let model = CostModel::new("t");
        for _ in 0..20 {
            model.record(None, MS);
        }
        assert_eq!(model.predict(None), Some(MS));
        for _ in 0..40 {
            model.record(None, 100 * MS);
        }
        assert!(model.predict(None).unwrap() > 95 * MS);
        let learned = model.learned();
        assert_eq!(learned.len(), 1);
        assert_eq!((learned[0].sizes, learned[0].runs), (None, 60));
    }

    #[test]
    fn one_outlier_moves_a_settled_estimate_by_at_most_three_eighths() {
        let model = CostModel::new("t");
        for _ in 0..20 {
            model.record(None, MS);
        }
        model.record(None, 10_000 * MS);
        assert_eq!(model.predict(None), Some(MS + 3 * MS / 8));
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let (a, b) = (CostModel::new("a"), CostModel::new("b"));
        assert_eq!(a.id(), a.id());
        assert_ne!(a.id(), b.id());
        assert!(std::ptr::eq(model_named("x::y"), model_named("x::y")));
    }
}
