//! `filter_enabled` and `deny_at_disable` on a request: whether it is in the sampled share, and
//! what it gets when it is not (see `config::filter_enabled`).

use super::{apply, ExtAuthz, State};
use crate::decision::{LocalReply, DETAILS_ERROR};
use crate::host::{Action, Host};

impl<H: Host> ExtAuthz<H> {
    /// `None` for a request that is checked. One that `filter_enabled` leaves out goes on
    /// unchecked, or, under `deny_at_disable`, gets `status_on_error` with an empty body, as
    /// native answers it; counted `disabled` either way, and no call is made.
    pub(super) fn left_out(&mut self) -> Option<Action> {
        let enabled = self.plugin.config.filter_enabled;
        if !enabled.samples() || enabled.enabled(self.plugin.sampler.next()) {
            return None;
        }
        self.plugin.stats.record_disabled(&self.host);
        self.state = State::Decided;
        let Some(status) = self.plugin.config.deny_at_disable else {
            return Some(Action::Continue);
        };
        let reply = LocalReply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            details: DETAILS_ERROR.into(),
        };
        apply::reply(&self.host, self.context_id, &reply);
        Some(Action::Pause)
    }
}
