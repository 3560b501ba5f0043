//! The subjects a caller and its nodes meet on, all under `PREFIX.DIGEST` (`DIGEST` is
//! `vN-` and the registry digest, N being the version of the encoding of jobs and replies):
//!
//! ```text
//! PREFIX.DIGEST.task.TASK          a job (request); nodes listen on PREFIX.DIGEST.task.> in one queue group
//! PREFIX.DIGEST.at.NODE.TASK       a job for the node NODE only, which said it has room
//! PREFIX.DIGEST.room               a node that turned a caller away has room again (payload: NODE)
//! PREFIX.DIGEST.status             every node answers with its status (see `status.rs`)
//! ```
//!
//! The digest is the registry's in hex, after the protocol version: a node built from other
//! tasks, or with another encoding of the same tasks, listens elsewhere, so it never receives
//! a job it would misread, and a caller with no matching node gets the
//! broker's "no responders" at once. `TASK` is the task's name with every character that a
//! subject token cannot hold replaced by `_`; the job body carries the exact name, so two
//! names that map to one token still run the right task.

use crate::wire::PROTOCOL_VERSION;

/// The subjects of one registry under one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Subjects {
    base: String,
}

impl Subjects {
    pub(crate) fn new(prefix: &str, digest: u64) -> Self {
        Subjects {
            base: format!("{prefix}.v{PROTOCOL_VERSION}-{digest:016x}"),
        }
    }

    /// Where jobs of `task` go.
    pub(crate) fn task(&self, task: &str) -> String {
        format!("{}.task.{}", self.base, token(task))
    }

    /// Where jobs of `task` for the node `node` (its [`token`]) go.
    pub(crate) fn at_node(&self, node: &str, task: &str) -> String {
        format!("{}.at.{node}.{}", self.base, token(task))
    }

    /// What the node `node` subscribes to, besides its queue group: jobs for it only.
    pub(crate) fn all_at_node(&self, node: &str) -> String {
        format!("{}.at.{node}.>", self.base)
    }

    /// What a node subscribes to: every task of its registry.
    pub(crate) fn all_tasks(&self) -> String {
        format!("{}.task.>", self.base)
    }

    /// The queue group of the nodes of one registry: each job goes to one of them.
    pub(crate) fn queue_group(&self) -> String {
        format!("{}.nodes", self.base)
    }

    /// The task token of a job that came on `subject`: the rest of a
    /// `PREFIX.DIGEST.task.TASK` subject, or of a `PREFIX.DIGEST.at.NODE.TASK` subject for
    /// the node `node`. `None` for any other subject.
    pub(crate) fn task_token<'s>(&self, subject: &'s str, node: &str) -> Option<&'s str> {
        let rest = subject
            .strip_prefix(self.base.as_str())?
            .strip_prefix('.')?;
        let task = match rest.strip_prefix("task.") {
            Some(task) => task,
            None => rest
                .strip_prefix("at.")?
                .strip_prefix(node)?
                .strip_prefix('.')?,
        };
        (!task.is_empty()).then_some(task)
    }

    /// Where every node answers with its status.
    pub(crate) fn status(&self) -> String {
        format!("{}.status", self.base)
    }

    /// Where a node says it has room again.
    pub(crate) fn room(&self) -> String {
        format!("{}.room", self.base)
    }
}

/// `text` as one subject token: every character a token cannot hold becomes `_`.
pub(crate) fn token(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '.' | '*' | '>') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_subjects_are_single_valid_tokens_under_the_digest() {
        let subjects = Subjects::new("jobs", 0xabc);
        assert_eq!(
            subjects.task("my_crate::tasks::sumn"),
            "jobs.v5-0000000000000abc.task.my_crate::tasks::sumn"
        );
        assert_eq!(
            subjects.task("a.b c*>"),
            "jobs.v5-0000000000000abc.task.a_b_c__"
        );
        assert_eq!(subjects.all_tasks(), "jobs.v5-0000000000000abc.task.>");
        assert_eq!(
            subjects.at_node("h_1", "t"),
            "jobs.v5-0000000000000abc.at.h_1.t"
        );
        assert_eq!(
            subjects.all_at_node("h_1"),
            "jobs.v5-0000000000000abc.at.h_1.>"
        );
        assert!(!subjects.room().starts_with(&subjects.all_tasks()[..28]));
    }

    #[test]
    fn a_job_subject_gives_back_its_task_token_and_nothing_else_does() {
        let subjects = Subjects::new("jobs", 0xabc);
        let task = "my_crate::tasks::sumn";
        assert_eq!(subjects.task_token(&subjects.task(task), "h_1"), Some(task));
        assert_eq!(
            subjects.task_token(&subjects.at_node("h_1", task), "h_1"),
            Some(task)
        );
        assert_eq!(
            subjects.task_token(&format!("{}.b", subjects.task("a")), "h_1"),
            Some("a.b"),
            "more tokens than one: never a task's token, so refused later"
        );
        for other in [
            subjects.at_node("h_2", task),
            subjects.status(),
            subjects.room(),
            "jobs.v5-0000000000000abc.task.".to_owned(),
            "jobs.v5-0000000000000abd.task.t".to_owned(),
        ] {
            assert_eq!(subjects.task_token(&other, "h_1"), None, "{other}");
        }
    }
}
