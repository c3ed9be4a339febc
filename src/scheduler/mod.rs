//! The scheduler's timing policy: which tasks run now, which wait and why,
//! and what a finished attempt does to a task. Pure functions over
//! [`TaskRecord`]s and an injected "now", so every rule here is unit-tested
//! without an actor system or a clock; `actor.rs` is the thin actix glue.
//!
//! The rules come from the spec (part A §5.2, part B §5 and §8.4):
//! - a due task runs only while a link its `Flags` admit is up, and only
//!   while the server is reachable; otherwise it is *parked*, which spends no
//!   retry;
//! - a failed attempt is retried every `retry_interval`, at most
//!   `max_retries` times per occurrence; then a one-off task fails and a
//!   recurring one (the poll never expires) waits for its next occurrence;
//! - recurrence is start-to-start from the occurrence that succeeded;
//! - after an outage the poll goes first, then downloads by start time, then
//!   reports (queued status messages are the reporter's, which drains its
//!   outbox right after the poll).

pub mod actor;
pub mod links;
pub mod settle;

use serde::{Deserialize, Serialize};

use crate::store::{TaskKind, TaskRecord};
pub use links::Links;

/// Failure recovery in force: the configuration's `[retry]` values, replaced
/// by the server's `FailureRetryInterval`/`FailureRetryCount` once it sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after a failed attempt, seconds.
    pub interval_secs: u64,
    /// Retries after the first attempt of one occurrence.
    pub max_retries: u32,
}

impl RetryPolicy {
    /// The policy in force: the server's `FailureRetryInterval` and
    /// `FailureRetryCount` over the image's `[retry]` values.
    pub fn effective(
        settings: &crate::config::Settings,
        values: &crate::store::ServerValues,
    ) -> RetryPolicy {
        let client = values.client_settings.as_ref();
        RetryPolicy {
            interval_secs: client
                .and_then(|c| c.failure_retry_interval)
                .unwrap_or(settings.retry.interval)
                .as_secs()
                .max(1),
            max_retries: client
                .and_then(|c| c.failure_retry_count)
                .unwrap_or(settings.retry.max_retries),
        }
    }
}

/// The poll interval in force: the server's `PollInterval` over the image's.
pub fn poll_interval_secs(
    settings: &crate::config::Settings,
    values: &crate::store::ServerValues,
) -> u64 {
    values
        .client_settings
        .as_ref()
        .and_then(|c| c.poll_interval)
        .unwrap_or(settings.poll.interval)
        .as_secs()
        .max(crate::poller::schedule::MIN_RECURRENCE_SECS)
}

/// Whether the management server answered the last time we tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Reachability {
    /// It answered (or we have not tried yet).
    #[default]
    Reachable,
    /// A connection-level failure (refused, DNS, timeout) since this time:
    /// everything but the poll is parked until a poll gets through.
    UnreachableSince(u64),
}

/// Why a task is not running now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Wait {
    /// Not due yet: its start time or next occurrence is in the future.
    NotDue {
        /// When it becomes due.
        at_unix: u64,
    },
    /// A retry is scheduled.
    Retry {
        /// Retries spent so far on this occurrence (this will be retry `attempt`).
        attempt: u32,
        /// The retry budget.
        max: u32,
        /// When it runs.
        at_unix: u64,
    },
    /// No network link at all.
    Offline,
    /// Links are up, but none of the classes its `Flags` allow.
    LinkNotAllowed {
        /// The task's `Flags`.
        flags: u32,
        /// The classes that are up now.
        up: Links,
    },
    /// The server did not answer; waiting for a poll to get through.
    ServerUnreachable {
        /// Since when.
        since_unix: u64,
    },
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Due tasks to start, in the order they should run.
    pub run: Vec<TaskRecord>,
    /// Due tasks held back, with the reason.
    pub parked: Vec<(TaskRecord, Wait)>,
    /// When the earliest task that is not due yet becomes due.
    pub next_wake_unix: Option<u64>,
}

/// Order class after an outage: poll, downloads by start time, reports.
fn rank(task: &TaskRecord) -> (u8, u64) {
    match task.kind {
        TaskKind::Poll => (0, task.next_due_unix),
        TaskKind::Download { .. } => (1, task.next_due_unix),
        TaskKind::Report { .. } => (2, task.next_due_unix),
    }
}

/// Decides which of `tasks` run at `now` given the links that are up and the
/// server's reachability.
pub fn plan(tasks: &[TaskRecord], now: u64, links: Links, reach: Reachability) -> Plan {
    let mut plan = Plan::default();
    let mut due: Vec<&TaskRecord> = Vec::new();
    for task in tasks {
        if task.next_due_unix > now {
            plan.next_wake_unix = Some(
                plan.next_wake_unix
                    .map_or(task.next_due_unix, |w| w.min(task.next_due_unix)),
            );
        } else {
            due.push(task);
        }
    }
    due.sort_by_key(|t| (rank(t), t.id.to_string()));
    for task in due {
        match blocked(task, links, reach) {
            Some(wait) => plan.parked.push((task.clone(), wait)),
            None => plan.run.push(task.clone()),
        }
    }
    plan
}

/// Why a due task cannot run now, if it cannot.
fn blocked(task: &TaskRecord, links: Links, reach: Reachability) -> Option<Wait> {
    if links.is_offline() {
        return Some(Wait::Offline);
    }
    if let TaskKind::Download { .. } = task.kind {
        if !links.admits(task.flags) {
            return Some(Wait::LinkNotAllowed {
                flags: task.flags,
                up: links,
            });
        }
    }
    match (reach, &task.kind) {
        // The poll is the probe that ends an outage.
        (Reachability::UnreachableSince(_), TaskKind::Poll) => None,
        (Reachability::UnreachableSince(since), _) => {
            Some(Wait::ServerUnreachable { since_unix: since })
        }
        (Reachability::Reachable, _) => None,
    }
}

/// Why `task` is waiting at `now`, or `None` if it would run.
pub fn explain(
    task: &TaskRecord,
    now: u64,
    links: Links,
    reach: Reachability,
    policy: RetryPolicy,
) -> Option<Wait> {
    if task.next_due_unix > now {
        return Some(if task.attempts > 0 {
            Wait::Retry {
                attempt: task.attempts,
                max: policy.max_retries,
                at_unix: task.next_due_unix,
            }
        } else {
            Wait::NotDue {
                at_unix: task.next_due_unix,
            }
        });
    }
    blocked(task, links, reach)
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The occurrence completed.
    Succeeded,
    /// The occurrence completed, but part of it failed (a report whose other
    /// collectors still delivered): counted as a success, the problem kept
    /// for `dmagent status`.
    Partial(String),
    /// It failed in a way a later attempt may fix (network, 5xx, digest mismatch).
    Retryable(String),
    /// It failed in a way retrying cannot fix (4xx, malformed answer, refused path).
    Terminal(String),
    /// The server could not be reached at all: park, spend nothing.
    Unreachable(String),
}

/// What happens to the task after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Keep the task with these new values.
    Reschedule(TaskRecord),
    /// A one-off task is done: remove it.
    Done,
    /// A one-off task ran out of retries (or failed terminally): remove it and
    /// record the failure.
    Failed(String),
}

/// Applies `attempt` of `task` (which was due at `task.next_due_unix`) at `now`.
pub fn after_attempt(task: &TaskRecord, attempt: Attempt, now: u64, policy: RetryPolicy) -> Next {
    let mut next = task.clone();
    match attempt {
        Attempt::Succeeded | Attempt::Partial(_) => match task.period_secs {
            Some(period) => {
                next.attempts = 0;
                next.last_error = match attempt {
                    Attempt::Partial(problem) => Some(problem),
                    _ => None,
                };
                next.next_due_unix = next_occurrence(task.next_due_unix, period, now);
                Next::Reschedule(next)
            }
            None => Next::Done,
        },
        Attempt::Unreachable(error) => {
            // Parked, not failed: due again as soon as the outage ends. The
            // poll is the probe that ends an outage; it tries again after the
            // retry interval, without spending a retry.
            if task.kind == TaskKind::Poll {
                next.next_due_unix = now.saturating_add(policy.interval_secs);
            }
            next.last_error = Some(error);
            Next::Reschedule(next)
        }
        Attempt::Retryable(error) if task.attempts < policy.max_retries => {
            next.attempts = task.attempts + 1;
            next.next_due_unix = now.saturating_add(policy.interval_secs);
            next.last_error = Some(error);
            Next::Reschedule(next)
        }
        Attempt::Retryable(error) | Attempt::Terminal(error) => match task.period_secs {
            Some(period) => {
                next.attempts = 0;
                next.last_error = Some(error);
                next.next_due_unix = next_occurrence(task.next_due_unix, period, now);
                Next::Reschedule(next)
            }
            None => Next::Failed(error),
        },
    }
}

/// The first occurrence after `now` on the grid `due + k * period`
/// (occurrences missed while the device was off are not run twice).
pub fn next_occurrence(due: u64, period: u64, now: u64) -> u64 {
    let period = period.max(1);
    if due > now {
        return due;
    }
    let missed = (now - due) / period + 1;
    due.saturating_add(missed.saturating_mul(period))
}

#[cfg(test)]
mod tests;
