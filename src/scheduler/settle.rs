//! Which dispatched tasks may run again: a task is busy from its dispatch
//! until the outcome of its attempt is committed, and a plan that read the
//! task list before that commit saw the task as it was (still due) and must
//! not run it a second time. Without this, a one-shot download that finished
//! while a plan was reading was fetched and reported twice.

use std::collections::{HashMap, HashSet};

use crate::store::TaskId;

/// See the module docs. Plans run one at a time.
#[derive(Debug, Default)]
pub struct Settling {
    busy: HashSet<TaskId>,
    plans_started: u64,
    /// Task -> `plans_started` when its outcome was committed.
    settled: HashMap<TaskId, u64>,
}

impl Settling {
    /// A plan starts reading the task list; returns its number.
    pub fn start_plan(&mut self) -> u64 {
        self.plans_started += 1;
        self.plans_started
    }

    /// Whether plan `plan` may dispatch `task` now; marks it busy if so.
    pub fn dispatch(&mut self, task: &TaskId, plan: u64) -> Dispatch {
        if self.busy.contains(task) {
            return Dispatch::Busy;
        }
        if self.settled.get(task).is_some_and(|&at| plan <= at) {
            return Dispatch::Stale;
        }
        self.busy.insert(task.clone());
        Dispatch::Run
    }

    /// The worker could not be reached: the task is not running after all.
    pub fn not_sent(&mut self, task: &TaskId) {
        self.busy.remove(task);
    }

    /// The outcome of `task`'s attempt is committed.
    pub fn settled(&mut self, task: TaskId) {
        self.busy.remove(&task);
        self.settled.insert(task, self.plans_started);
    }

    /// Plan `plan` has dispatched what it could: every later plan starts
    /// after the commits it knew of.
    pub fn end_plan(&mut self, plan: u64) {
        self.settled.retain(|_, at| *at >= plan);
    }
}

/// What [`Settling::dispatch`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Run it.
    Run,
    /// Already running.
    Busy,
    /// This plan read the task before its last outcome was committed: plan again.
    Stale,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_that_read_before_the_commit_does_not_run_the_task_again() {
        let mut s = Settling::default();
        let task = TaskId::download("BIG");
        let first = s.start_plan();
        assert_eq!(s.dispatch(&task, first), Dispatch::Run);
        s.end_plan(first);
        // A plan reads the task list while the download finishes …
        let racing = s.start_plan();
        assert_eq!(s.dispatch(&task, racing), Dispatch::Busy);
        // … and its outcome is committed before that plan's result arrives.
        let stale = s.start_plan();
        s.settled(task.clone());
        assert_eq!(s.dispatch(&task, stale), Dispatch::Stale);
        s.end_plan(stale);
        // A plan that starts after the commit reads the outcome and decides.
        let fresh = s.start_plan();
        assert_eq!(s.dispatch(&task, fresh), Dispatch::Run);
    }

    #[test]
    fn a_task_whose_worker_was_unreachable_can_run_again() {
        let mut s = Settling::default();
        let task = TaskId::poll();
        let plan = s.start_plan();
        assert_eq!(s.dispatch(&task, plan), Dispatch::Run);
        s.not_sent(&task);
        assert_eq!(s.dispatch(&task, plan), Dispatch::Run);
    }
}
