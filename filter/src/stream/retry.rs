//! `http_service.retry_policy`: the filter's own retries of an authorization request, since the
//! host's HTTP call has none. A try that failed on one of the policy's `retry_on` conditions is
//! sent again after native's jittered back-off while retries and time remain; each try is
//! bounded by the policy's per-try timeout and by what is left of the service's `timeout`, which
//! bounds all tries and back-offs together, so a retry never makes a check outlast its deadline.
//!
//! The ABI gives a stream no timer: a request waiting out its back-off is held (no call out) in
//! the plugin's [`crate::retry_queue`], and the root's tick wakes it in [`ExtAuthz::on_retry_due`].
//! (gRPC retries are Envoy's own, back-off included: see `config::retry`.)

use std::time::Duration;

use super::{apply, ExtAuthz, State};
use crate::config::HttpService;
use crate::decision::{CheckError, Decision};
use crate::host::{Action, Host, LogLevel};

/// The body of the 503 Envoy answers an HTTP call with when the server reset the stream or the
/// connection before its headers (or could not be reached): not the server's answer.
const RESET_BEFORE_HEADERS: &[u8] = b"upstream connect error or disconnect/reset before headers";

/// The least a try may be given: the host counts whole milliseconds.
const LEAST_TRY: Duration = Duration::from_millis(1);

/// The tries of the current HTTP step.
#[derive(Debug, Default)]
pub(super) struct Tries {
    /// When the first try went out.
    started: Option<Duration>,
    retries: u32,
    /// Waiting out a back-off in the plugin's retry queue.
    pub(super) backing_off: bool,
}

/// Whether an HTTP call's answer is Envoy's own for a reset or a failed connection. Native's
/// router retries those under `reset` and `connect-failure` before it makes that answer; the
/// host's call hands the answer over instead, so it is told by its body.
pub(super) fn reset_before_headers(body: &[u8]) -> bool {
    body.starts_with(RESET_BEFORE_HEADERS)
}

impl<H: Host> ExtAuthz<H> {
    /// How long the next try of `service` may take, within `timeout` (what the chain allows).
    pub(super) fn try_timeout(
        &mut self,
        service: &HttpService,
        timeout: Duration,
        now: Duration,
    ) -> Duration {
        let Some(retry) = service.retry else {
            return timeout;
        };
        let started = *self.tries.started.get_or_insert(now);
        let left = service.timeout.saturating_sub(now.saturating_sub(started));
        timeout.min(retry.per_try_timeout).min(left).max(LEAST_TRY)
    }

    /// Retries the current HTTP step after its back-off if its policy retries this failed try
    /// (`reset`: the answer is Envoy's for a reset or a failed connection); true if it will (the
    /// request stays held until [`Self::on_retry_due`]).
    pub(super) fn retried(
        &mut self,
        service: &HttpService,
        decision: &Decision,
        reset: bool,
    ) -> bool {
        let Some(retry) = service.retry else {
            return false;
        };
        let status = match decision {
            Decision::Error(CheckError::HttpCall) => None,
            Decision::Error(CheckError::ServerError(503)) if reset => None,
            Decision::Error(CheckError::ServerError(status)) => Some(*status),
            Decision::Deny(reply) => Some(reply.status),
            _ => return self.tries_over(),
        };
        let now = self.now();
        let elapsed = now.saturating_sub(self.tries.started.unwrap_or(now));
        let wait = retry.back_off(self.tries.retries + 1, self.plugin.sampler.next());
        // The retry must still have a try's least time after its back-off.
        let time_left = elapsed + wait + LEAST_TRY < service.timeout;
        if self.tries.retries >= retry.num_retries || !retry.on.retries(status) || !time_left {
            return self.tries_over();
        }
        self.tries.retries += 1;
        if let Some(call) = self.call.take() {
            let took = now.saturating_sub(call.started);
            self.plugin.stats.record_latency(&self.host, took);
        }
        self.plugin.stats.record_retry(&self.host);
        let what = status.map_or_else(|| "no answer".to_owned(), |s| format!("status {s}"));
        self.log(
            LogLevel::Info,
            &format!(
                "retrying the HTTP check after {what} in {} ms (retry {} of {})",
                crate::stats::millis(wait),
                self.tries.retries,
                retry.num_retries
            ),
        );
        // Held, with no call out, until the root's tick says the back-off is over; even a wait
        // of 0 goes through the tick, as native's goes through its timer, so that a connection
        // the server closed is gone before the retry.
        self.tries.backing_off = true;
        self.plugin.retry_queue.wait(self.context_id, now + wait);
        self.plugin.retick(&self.host, now);
        true
    }

    /// The root's tick: this request's back-off has ended; its retry goes out.
    pub fn on_retry_due(&mut self) {
        if !std::mem::take(&mut self.tries.backing_off) || self.state != State::Checking {
            return;
        }
        if self.run_rest() == Action::Continue {
            apply::resume(&self.host, self.context_id);
        }
    }

    /// A request that ends while it waits out a back-off leaves the queue.
    pub(super) fn forget_retry(&mut self) {
        if std::mem::take(&mut self.tries.backing_off) {
            self.plugin.retry_queue.forget(self.context_id);
        }
    }

    /// The step is done trying: the next HTTP step starts its own.
    fn tries_over(&mut self) -> bool {
        self.tries = Tries::default();
        false
    }
}
