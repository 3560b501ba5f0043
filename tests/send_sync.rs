//! Which public types of `ythread` and `ythread-executors` may cross or be shared between
//! threads, as the crate docs state it ("Threads: `Send` and `Sync`"). Every assertion is
//! checked when this file compiles: a type that loses (or gains) `Send` or `Sync` breaks the
//! build of this test, and the test functions only make the checks show up in the test list.

use ythread::{
    Apart, BadGaps, Builder, CancelGuard, Cancellation, CostModel, Encoded, Error, ErrorKind,
    Executor, Inline, JoinHandle, LearnedCost, Metrics, SinkRefused, TaskMetrics, TaskRegistry,
    Termination, Yielder,
};
use ythread_executors::schedule::{InlineBelow, Order, Scheduling};
use ythread_executors::{
    CopyMode, Exclusive, ExecutorConfig, NatsConfig, NatsExecutor, PoolStatus, RayonPool,
    SubprocessBuilder, SubprocessConfig, SubprocessPool, WorkerPriority,
};

/// Compiles only for types that are both `Send` and `Sync`.
const fn send_and_sync<T: Send + Sync + ?Sized>() {}

/// Whether a type is `Send` (or `Sync`), answered at compile time without requiring it: the
/// inherent constant of `SendProbe<T>` exists only where `T: Send` and then shadows the
/// trait's `false`, as path resolution prefers an inherent item whose bounds hold.
mod probe {
    use std::marker::PhantomData;

    pub(crate) trait Fallback {
        const SEND: bool = false;
        const SYNC: bool = false;
    }

    pub(crate) struct SendProbe<T: ?Sized>(PhantomData<T>);
    impl<T: ?Sized + Send> SendProbe<T> {
        pub(crate) const SEND: bool = true;
    }
    impl<T: ?Sized> Fallback for SendProbe<T> {}

    pub(crate) struct SyncProbe<T: ?Sized>(PhantomData<T>);
    impl<T: ?Sized + Sync> SyncProbe<T> {
        pub(crate) const SYNC: bool = true;
    }
    impl<T: ?Sized> Fallback for SyncProbe<T> {}
}

use probe::{Fallback, SendProbe, SyncProbe};

#[test]
fn the_core_types_shared_between_threads_are_send_and_sync() {
    const _: () = {
        send_and_sync::<Executor>();
        send_and_sync::<Inline>();
        send_and_sync::<TaskRegistry>();
        send_and_sync::<CostModel>();
        send_and_sync::<LearnedCost>();
        send_and_sync::<Metrics>();
        send_and_sync::<TaskMetrics>();
        send_and_sync::<Error>();
        send_and_sync::<ErrorKind>();
        send_and_sync::<Termination>();
        send_and_sync::<JoinHandle<u64>>();
        send_and_sync::<JoinHandle<Result<Vec<u8>, Error>>>();
        send_and_sync::<Builder>();
        send_and_sync::<Cancellation>();
        send_and_sync::<CancelGuard>();
        send_and_sync::<Encoded<'static>>();
        send_and_sync::<Apart>();
        send_and_sync::<BadGaps>();
        send_and_sync::<SinkRefused>();
    };
}

#[test]
fn the_yielder_stays_on_its_handlers_thread() {
    // The yielder is the handler's coroutine: neither sending it nor sharing it is allowed.
    const _: () = assert!(!SendProbe::<Yielder<'static>>::SEND);
    const _: () = assert!(!SyncProbe::<Yielder<'static>>::SYNC);
    // The probes do tell the two apart: a type that is both answers true.
    const _: () = assert!(SendProbe::<Executor>::SEND && SyncProbe::<Executor>::SYNC);
}

#[test]
fn every_strategy_and_its_configuration_is_send_and_sync() {
    const _: () = {
        send_and_sync::<Exclusive>();
        send_and_sync::<RayonPool>();
        send_and_sync::<SubprocessPool>();
        send_and_sync::<NatsExecutor>();
        send_and_sync::<PoolStatus>();
        send_and_sync::<SubprocessBuilder>();
        send_and_sync::<ExecutorConfig>();
        send_and_sync::<SubprocessConfig>();
        send_and_sync::<NatsConfig>();
        send_and_sync::<Scheduling>();
        send_and_sync::<Order>();
        send_and_sync::<InlineBelow>();
        send_and_sync::<WorkerPriority>();
        send_and_sync::<CopyMode>();
        send_and_sync::<ythread_executors::Error>();
        send_and_sync::<ythread_executors::ErrorKind>();
    };
}
