//! Unit tests of the timing policy, with an injected clock.

use super::*;
use crate::config::LinkClass;
use crate::protocol::ReportType;

const POLICY: RetryPolicy = RetryPolicy {
    interval_secs: 180,
    max_retries: 5,
};
const T0: u64 = 1_000_000;

fn wifi() -> Links {
    Links::OFFLINE.with(LinkClass::High)
}

fn poll(due: u64) -> TaskRecord {
    TaskRecord::poll(due, 3600, T0)
}

fn download(id: &str, due: u64, flags: u32) -> TaskRecord {
    TaskRecord::download(id, due, flags, T0)
}

fn report(due: u64) -> TaskRecord {
    TaskRecord::report(ReportType::MachineInventory, due, 86_400, T0)
}

fn ids(tasks: &[TaskRecord]) -> Vec<String> {
    tasks.iter().map(|t| t.id.to_string()).collect()
}

#[test]
fn after_an_outage_the_poll_runs_first_then_downloads_by_start_time_then_reports() {
    let tasks = vec![
        report(T0 - 50),
        download("late", T0 - 10, 0),
        download("early", T0 - 100, 0),
        poll(T0 - 5),
        download("future", T0 + 60, 0),
    ];
    let plan = plan(&tasks, T0, wifi(), Reachability::Reachable);
    assert_eq!(
        ids(&plan.run),
        ["poll", "download:early", "download:late", "report:machine"]
    );
    assert!(plan.parked.is_empty());
    assert_eq!(plan.next_wake_unix, Some(T0 + 60));
}

#[test]
fn a_docked_only_download_parks_until_a_docked_link_appears() {
    let tasks = vec![download("cradle", T0, 0x4), download("any", T0, 0)];
    let plan1 = plan(&tasks, T0, wifi(), Reachability::Reachable);
    assert_eq!(ids(&plan1.run), ["download:any"]);
    assert_eq!(
        plan1.parked[0].1,
        Wait::LinkNotAllowed {
            flags: 0x4,
            up: wifi()
        },
        "parked with the reason an operator can read"
    );
    // Parking spends nothing: the task is unchanged.
    assert_eq!(plan1.parked[0].0, tasks[0]);
    let docked = wifi().with(LinkClass::Docked);
    let plan2 = plan(&tasks, T0 + 1, docked, Reachability::Reachable);
    assert_eq!(ids(&plan2.run), ["download:any", "download:cradle"]);
}

#[test]
fn offline_parks_everything_and_an_unreachable_server_lets_only_the_poll_probe() {
    let tasks = vec![poll(T0), download("a", T0, 0), report(T0)];
    let offline = plan(&tasks, T0, Links::OFFLINE, Reachability::Reachable);
    assert!(offline.run.is_empty());
    assert!(offline.parked.iter().all(|(_, w)| *w == Wait::Offline));

    let down = plan(&tasks, T0, wifi(), Reachability::UnreachableSince(T0 - 30));
    assert_eq!(ids(&down.run), ["poll"]);
    assert_eq!(down.parked.len(), 2);
    assert!(down.parked.iter().all(|(_, w)| *w
        == Wait::ServerUnreachable {
            since_unix: T0 - 30
        }));
}

#[test]
fn retries_follow_the_policy_then_a_one_off_fails() {
    let mut task = download("pkg", T0, 0);
    let mut now = T0;
    for attempt in 1..=5 {
        match after_attempt(
            &task,
            Attempt::Retryable("connection reset".into()),
            now,
            POLICY,
        ) {
            Next::Reschedule(next) => {
                assert_eq!(next.attempts, attempt);
                assert_eq!(next.next_due_unix, now + 180);
                assert_eq!(next.last_error.as_deref(), Some("connection reset"));
                task = next;
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
        now += 180;
    }
    assert_eq!(
        after_attempt(
            &task,
            Attempt::Retryable("connection reset".into()),
            now,
            POLICY
        ),
        Next::Failed("connection reset".into())
    );
}

#[test]
fn a_recurring_task_out_of_retries_waits_for_its_next_occurrence() {
    let mut task = poll(T0);
    task.attempts = 5;
    match after_attempt(&task, Attempt::Retryable("503".into()), T0 + 900, POLICY) {
        Next::Reschedule(next) => {
            assert_eq!(next.attempts, 0, "a fresh budget for the next occurrence");
            assert_eq!(next.next_due_unix, T0 + 3600);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn terminal_failures_do_not_retry() {
    let task = download("pkg", T0, 0);
    assert_eq!(
        after_attempt(&task, Attempt::Terminal("404".into()), T0, POLICY),
        Next::Failed("404".into())
    );
    let recurring = report(T0);
    match after_attempt(&recurring, Attempt::Terminal("400".into()), T0, POLICY) {
        Next::Reschedule(next) => assert_eq!(next.next_due_unix, T0 + 86_400),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unreachable_server_spends_no_retry() {
    let task = download("pkg", T0, 0);
    match after_attempt(
        &task,
        Attempt::Unreachable("connection refused".into()),
        T0 + 5,
        POLICY,
    ) {
        Next::Reschedule(next) => {
            assert_eq!(next.attempts, 0);
            assert_eq!(
                next.next_due_unix, T0,
                "still due: it runs when the server returns"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn success_reschedules_start_to_start_and_skips_missed_occurrences() {
    let task = poll(T0);
    match after_attempt(&task, Attempt::Succeeded, T0 + 2, POLICY) {
        Next::Reschedule(next) => assert_eq!(next.next_due_unix, T0 + 3600),
        other => panic!("{other:?}"),
    }
    // Off for 3.5 periods: the next occurrence is the first in the future.
    match after_attempt(&task, Attempt::Succeeded, T0 + 3 * 3600 + 1800, POLICY) {
        Next::Reschedule(next) => assert_eq!(next.next_due_unix, T0 + 4 * 3600),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        after_attempt(&download("p", T0, 0), Attempt::Succeeded, T0, POLICY),
        Next::Done
    );
}

#[test]
fn explain_says_why_a_task_waits() {
    let mut task = download("pkg", T0 + 60, 0x4);
    assert_eq!(
        explain(&task, T0, wifi(), Reachability::Reachable, POLICY),
        Some(Wait::NotDue { at_unix: T0 + 60 })
    );
    task.attempts = 2;
    assert_eq!(
        explain(&task, T0, wifi(), Reachability::Reachable, POLICY),
        Some(Wait::Retry {
            attempt: 2,
            max: 5,
            at_unix: T0 + 60
        })
    );
    task.next_due_unix = T0;
    assert!(matches!(
        explain(&task, T0, wifi(), Reachability::Reachable, POLICY),
        Some(Wait::LinkNotAllowed { flags: 4, .. })
    ));
    assert_eq!(
        explain(
            &task,
            T0,
            wifi().with(LinkClass::Docked),
            Reachability::Reachable,
            POLICY
        ),
        None
    );
}

#[test]
fn an_unreachable_server_is_probed_by_the_poll_every_retry_interval() {
    let task = poll(T0);
    match after_attempt(
        &task,
        Attempt::Unreachable("connection refused".into()),
        T0 + 5,
        POLICY,
    ) {
        Next::Reschedule(next) => {
            assert_eq!(next.attempts, 0, "no retry spent");
            assert_eq!(next.next_due_unix, T0 + 5 + 180, "not a busy loop");
        }
        other => panic!("{other:?}"),
    }
}
