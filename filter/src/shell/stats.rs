//! The filter's metrics, with native ext_authz's names: `ext_authz.[<stat_prefix>.]<name>`, and a
//! histogram of how long each call to an auth server took. Envoy lists a wasm filter's metrics
//! with a `wasmcustom.` prefix in `/stats`.

use super::host::{self, HostStatus};
use crate::config::FailureMode;
use crate::decision::{CheckError, Decision};

pub struct Stats {
    ok: u32,
    denied: u32,
    error: u32,
    failure_mode_allowed: u32,
    disabled: u32,
    invalid: u32,
    check_latency: u32,
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
            invalid: counter("invalid")?,
            check_latency: host::define_histogram(&format!("{prefix}check_latency_ms"))?,
        })
    }

    /// A request a `disabled` route let through unchecked.
    pub fn record_disabled(&self) {
        host::increment(self.disabled);
    }

    /// How long one call to an auth server took, answered or failed.
    pub fn record_latency(&self, elapsed: std::time::Duration) {
        host::record(
            self.check_latency,
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        );
    }

    /// Counts a decision as native does: an error let through counts as error and as allowed.
    pub fn record(&self, decision: &Decision, failure_mode: FailureMode) {
        match decision {
            Decision::Allow(_) => host::increment(self.ok),
            Decision::Deny(_) => host::increment(self.denied),
            Decision::Invalid(invalid) => {
                if invalid.denied {
                    host::increment(self.denied);
                }
                host::increment(self.invalid);
            }
            Decision::Error(error) => {
                host::increment(self.error);
                if matches!(error, CheckError::Malformed(_)) {
                    host::increment(self.invalid);
                }
                if matches!(failure_mode, FailureMode::Allow { .. }) {
                    host::increment(self.failure_mode_allowed);
                }
            }
        }
    }
}
