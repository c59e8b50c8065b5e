//! HTTP retries waiting out their back-off, woken from the root's tick.
//!
//! The ABI gives a stream no timer of its own, only its root's tick. A stream whose HTTP try
//! failed under `retry_policy` puts itself here with the time its back-off ends; the root sets its
//! tick to the first such time ([`crate::plugin::Plugin::tick_period`]) and, on the tick, wakes
//! every stream that is due.

use std::cell::RefCell;
use std::time::Duration;

/// The shortest tick the host counts: whole milliseconds.
const LEAST_TICK: Duration = Duration::from_millis(1);

#[derive(Default)]
pub struct RetryQueue {
    /// (context id, when its back-off ends).
    waiting: RefCell<Vec<(u32, Duration)>>,
}

impl RetryQueue {
    /// `context_id` retries at `due`.
    pub fn wait(&self, context_id: u32, due: Duration) {
        let mut waiting = self.waiting.borrow_mut();
        forget(&mut waiting, context_id);
        waiting.push((context_id, due));
    }

    /// The request is gone, or retried.
    pub fn forget(&self, context_id: u32) {
        forget(&mut self.waiting.borrow_mut(), context_id);
    }

    /// Takes the requests whose back-off has ended by `now`.
    pub fn due(&self, now: Duration) -> Vec<u32> {
        take_due(&mut self.waiting.borrow_mut(), now)
    }

    /// How long from `now` until the first back-off ends (at least a millisecond, the host's
    /// least tick); `None` when nothing waits.
    pub fn next_wake(&self, now: Duration) -> Option<Duration> {
        let first = self.waiting.borrow().iter().map(|&(_, at)| at).min()?;
        Some(first.saturating_sub(now).max(LEAST_TICK))
    }
}

/// Drops `context_id`'s entries from a list of (context id, deadline); the body watch's list too.
pub fn forget(waiting: &mut Vec<(u32, Duration)>, context_id: u32) {
    waiting.retain(|&(id, _)| id != context_id);
}

/// Takes the ids whose deadline is `now` or earlier out of a list of (context id, deadline).
pub fn take_due(waiting: &mut Vec<(u32, Duration)>, now: Duration) -> Vec<u32> {
    let mut due = Vec::new();
    waiting.retain(|&(id, at)| {
        let ready = at <= now;
        if ready {
            due.push(id);
        }
        !ready
    });
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(100);
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn requests_are_woken_once_when_their_back_off_ends() {
        let queue = RetryQueue::default();
        assert_eq!(queue.next_wake(T0), None);
        queue.wait(1, T0 + 30 * MS);
        queue.wait(2, T0 + 10 * MS);
        assert_eq!(queue.next_wake(T0), Some(10 * MS));
        assert!(queue.due(T0 + 9 * MS).is_empty());
        assert_eq!(queue.due(T0 + 10 * MS), vec![2]);
        assert_eq!(queue.next_wake(T0 + 10 * MS), Some(20 * MS));
        assert_eq!(queue.due(T0 + 40 * MS), vec![1]);
        assert!(queue.due(T0 + 80 * MS).is_empty(), "each wakes once");
        assert_eq!(queue.next_wake(T0), None);
    }

    #[test]
    fn a_forgotten_request_is_never_woken_and_a_late_one_wakes_at_the_next_tick() {
        let queue = RetryQueue::default();
        queue.wait(3, T0);
        queue.forget(3);
        assert!(queue.due(T0 + MS).is_empty());
        queue.wait(4, T0);
        queue.wait(4, T0 + 5 * MS);
        assert_eq!(queue.next_wake(T0 + 9 * MS), Some(MS), "overdue: at once");
        assert_eq!(queue.due(T0 + 9 * MS), vec![4], "waiting twice is one wait");
    }
}
