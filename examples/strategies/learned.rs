//! What each strategy's scheduler learned: its metrics summary (a header line, then one line
//! per task as `TaskMetrics` prints itself), taken after the mixed section so the model has
//! seen every size.

use ythread::Executor;

use crate::plan::Strategy;

/// One strategy's metrics lines, or why there are none.
pub(crate) type Row = crate::plan::Row<Vec<String>>;

pub(crate) fn summary(strategy: &Strategy, executor: &Result<Executor, String>) -> Row {
    let lines = executor.as_ref().map_err(Clone::clone).map(|executor| {
        executor
            .metrics()
            .to_string()
            .lines()
            .map(str::to_owned)
            .collect()
    });
    Row::new(strategy, lines)
}
