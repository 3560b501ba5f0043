//! The showcase of `ythread`: the tasks, the sum server and the load client shared by the
//! examples, the integration tests and the benchmarks.

pub mod tasks;
