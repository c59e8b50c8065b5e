//! Requests waiting for their body under `with_request_body`, watched from the root's tick.
//!
//! Envoy delivers body callbacks to a paused wasm filter only when the Wasm PluginConfig says
//! `allow_on_headers_stop_iteration: true`. Without it a request held for its body would wait
//! forever. The watch bounds that wait: a VM that has never seen a body callback gives a request
//! [`GRACE`] for its first one, then fails it as a check error (status_on_error, or through under
//! failure_mode_allow) and logs, once, what to set. The first body callback a VM sees proves the
//! setting, and the watch stops for good.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use crate::retry_queue;

/// How long a request waits for its first body callback before the setting is taken as missing.
pub const GRACE: Duration = Duration::from_secs(1);
/// How often the root looks.
pub const TICK: Duration = Duration::from_millis(200);

#[derive(Default)]
pub struct BodyWatch {
    /// A body callback has arrived on this VM: the setting is there.
    delivered: Cell<bool>,
    /// (context id, when its [`GRACE`] ends) of requests that have seen no body callback yet.
    waiting: RefCell<Vec<(u32, Duration)>>,
    /// Requests given up on; a late body callback for one of them is let be.
    expired: RefCell<Vec<u32>>,
    warned: Cell<bool>,
}

impl BodyWatch {
    pub fn delivered(&self) -> bool {
        self.delivered.get()
    }

    /// A request is waiting for its body.
    pub fn wait(&self, context_id: u32, now: Duration) {
        if !self.delivered.get() {
            let until = now.saturating_add(GRACE);
            self.waiting.borrow_mut().push((context_id, until));
        }
    }

    /// A body callback arrived for `context_id`. Returns false when the watch already gave up on
    /// the request and answered for it.
    pub fn arrived(&self, context_id: u32) -> bool {
        self.delivered.set(true);
        self.waiting.borrow_mut().clear();
        let mut expired = self.expired.borrow_mut();
        match expired.iter().position(|&id| id == context_id) {
            Some(at) => {
                expired.swap_remove(at);
                false
            }
            None => true,
        }
    }

    /// The request is gone (answered, reset, or done).
    pub fn forget(&self, context_id: u32) {
        retry_queue::forget(&mut self.waiting.borrow_mut(), context_id);
        self.expired.borrow_mut().retain(|&id| id != context_id);
    }

    /// Takes the requests that have waited past [`GRACE`] with no body callback on this VM.
    pub fn expire(&self, now: Duration) -> Vec<u32> {
        if self.delivered.get() {
            return Vec::new();
        }
        let due = retry_queue::take_due(&mut self.waiting.borrow_mut(), now);
        self.expired.borrow_mut().extend_from_slice(&due);
        due
    }

    /// True the first time only: the warning is logged once per VM.
    pub fn first_warning(&self) -> bool {
        !self.warned.replace(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(100);

    #[test]
    fn requests_expire_after_the_grace_when_no_body_ever_arrived() {
        let watch = BodyWatch::default();
        watch.wait(1, T0);
        watch.wait(2, T0 + Duration::from_millis(500));
        assert!(watch
            .expire(T0 + GRACE - Duration::from_millis(1))
            .is_empty());
        assert_eq!(watch.expire(T0 + GRACE), vec![1]);
        assert_eq!(
            watch.expire(T0 + GRACE + Duration::from_millis(500)),
            vec![2]
        );
        assert!(
            watch.expire(T0 + GRACE * 10).is_empty(),
            "each request expires once"
        );
    }

    #[test]
    fn one_body_callback_proves_the_setting_for_good() {
        let watch = BodyWatch::default();
        watch.wait(1, T0);
        assert!(watch.arrived(1));
        assert!(watch.delivered());
        watch.wait(2, T0);
        assert!(watch.expire(T0 + GRACE * 10).is_empty());
    }

    #[test]
    fn a_late_body_for_an_expired_request_is_reported() {
        let watch = BodyWatch::default();
        watch.wait(7, T0);
        assert_eq!(watch.expire(T0 + GRACE), vec![7]);
        assert!(!watch.arrived(7), "the watch already answered for it");
        assert!(watch.arrived(7), "but only once");
    }

    #[test]
    fn forgotten_requests_never_expire() {
        let watch = BodyWatch::default();
        watch.wait(3, T0);
        watch.forget(3);
        assert!(watch.expire(T0 + GRACE).is_empty());
    }

    #[test]
    fn warns_once() {
        let watch = BodyWatch::default();
        assert!(watch.first_warning());
        assert!(!watch.first_warning());
    }
}
