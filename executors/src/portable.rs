//! What a strategy that sends work out of this process checks first: that the work is a named
//! task (a closure cannot travel) and that the registry it sends by knows the task.

use ythread::{Error as WorkError, TaskRegistry, Work};

/// The name of `work`'s task if `registry` can send it; otherwise fails `work` with
/// `NotPortable` (naming `strategy`) or `UnknownTask` (naming `owner`, the registry's owner,
/// such as "this subprocess pool") and returns `None`.
pub(crate) fn portable_task(
    work: &mut dyn Work,
    registry: &TaskRegistry,
    strategy: &str,
    owner: &str,
) -> Option<&'static str> {
    let Some(task) = work.task_name() else {
        work.fail(WorkError::not_portable(strategy));
        return None;
    };
    if !registry.contains(task) {
        work.fail(WorkError::unknown_task(
            task,
            format!("in the registry of {owner}"),
        ));
        return None;
    }
    Some(task)
}
