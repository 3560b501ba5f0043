//! What a node checks before it runs a job: that its body names the task its subject names,
//! and the size its caller declares, which the node predicts the job's cost with.
//!
//! **The subject decides the task.** A job that arrives on `PREFIX.DIGEST.task.TASK` (or
//! `PREFIX.DIGEST.at.NODE.TASK`) runs `TASK` or nothing: a body that names another task is
//! refused with an error reply. So the broker's subject permissions decide what a publisher
//! can run: one allowed to publish on `ythread.*.task.app::resize` cannot run
//! `app::delete_everything` by naming it in the body.
//!
//! **The size is a hint.** A task's size is computed from its decoded arguments, and a node
//! keeps them encoded (its local strategy may forward them without decoding), so the caller,
//! which has the arguments decoded, sends the size in the [`SIZE_HEADER`] header. The node
//! predicts with it as the local strategies predict with theirs, and records the run at that
//! size. Nothing that protects the node rests on it: no job runs while its thread holds the
//! node's runtime, whatever its prediction (see `node.rs`), so a publisher that lies about a
//! size only changes how its own job runs (in place and unannounced, or on a blocking thread
//! after "taken") and the node's estimates for that size.

use async_nats::Message;
use ythread::{CostModel, TaskRegistry};

use crate::nats::message::SIZE_HEADER;
use crate::nats::subjects::{self, Subjects};
use crate::nats::untrusted::NAME_LIMIT;
use crate::untrusted::clean;
use crate::wire::{self, WireError};

/// A job the node may run.
pub(crate) struct Admitted {
    /// The cost model of its task; `None` for a task this node does not have (running it
    /// gives the caller its "unknown task" error).
    pub(crate) model: Option<&'static CostModel>,
    /// The size the caller declared, if any.
    pub(crate) size: Option<u64>,
}

/// Checks `job`, sent to the node whose subject token is `node` and which runs `registry`;
/// the error is the reply.
pub(crate) fn admit(
    registry: &TaskRegistry,
    subjects: &Subjects,
    node: &str,
    job: &Message,
) -> Result<Admitted, WireError> {
    let task = match wire::split_job(&job.payload) {
        Ok((task, _)) => task,
        Err(e) => {
            return Err(WireError::Codec(format!(
                "the job body does not decode ({e}); send what the nats strategy of this \
                 build sends"
            )));
        }
    };
    let named = subjects.task_token(job.subject.as_str(), node);
    if named != Some(subjects::token(task).as_str()) {
        return Err(WireError::Codec(format!(
            "refused: the job's subject `{}` does not name the task its body names, `{}`; a \
             node runs the task its subject names, so publish on the subject of the task you \
             mean",
            clean(job.subject.as_str(), NAME_LIMIT),
            clean(task, NAME_LIMIT),
        )));
    }
    let size = job
        .headers
        .as_ref()
        .and_then(|headers| headers.get(SIZE_HEADER))
        .and_then(|size| size.as_str().trim().parse().ok());
    Ok(Admitted {
        model: registry.cost_model(task),
        size,
    })
}
