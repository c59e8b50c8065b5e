//! The filter's counters, with native ext_authz's names: `ext_authz.[<stat_prefix>.]<name>`.
//! Envoy lists a wasm filter's metrics with a `wasmcustom.` prefix in `/stats`.

use super::host::{self, HostStatus};
use crate::config::FailureMode;
use crate::decision::Decision;

pub struct Stats {
    ok: u32,
    denied: u32,
    error: u32,
    failure_mode_allowed: u32,
    disabled: u32,
}

impl Stats {
    pub fn define(stat_prefix: &str) -> Result<Self, HostStatus> {
        let prefix = if stat_prefix.is_empty() {
            "ext_authz.".to_owned()
        } else {
            format!("ext_authz.{stat_prefix}.")
        };
        let counter = |name: &str| host::define_counter(&format!("{prefix}{name}"));
        Ok(Self {
            ok: counter("ok")?,
            denied: counter("denied")?,
            error: counter("error")?,
            failure_mode_allowed: counter("failure_mode_allowed")?,
            disabled: counter("disabled")?,
        })
    }

    /// A request a `disabled` route let through unchecked.
    pub fn record_disabled(&self) {
        host::increment(self.disabled);
    }

    /// Counts a decision as native does: an error let through counts as error and as allowed.
    pub fn record(&self, decision: &Decision, failure_mode: FailureMode) {
        match decision {
            Decision::Allow(_) => host::increment(self.ok),
            Decision::Deny(_) => host::increment(self.denied),
            Decision::Error(_) => {
                host::increment(self.error);
                if matches!(failure_mode, FailureMode::Allow { .. }) {
                    host::increment(self.failure_mode_allowed);
                }
            }
        }
    }
}
