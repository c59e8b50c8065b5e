//! The filter's metrics, with native ext_authz's names: `ext_authz.[<stat_prefix>.]<name>`, and a
//! histogram of how long each call to an auth server took. Envoy lists a wasm filter's metrics
//! with a `wasmcustom.` prefix in `/stats`.
//!
//! [`Stats::record`] is the one place a request's outcome becomes counts.

use std::time::Duration;

use crate::config::FailureMode;
use crate::decision::{CheckError, Decision};
use crate::host::{Host, HostStatus, MetricKind};

/// What every metric name of the plugin starts with: `ext_authz.[<stat_prefix>.]`.
pub fn prefix(stat_prefix: &str) -> String {
    if stat_prefix.is_empty() {
        "ext_authz.".to_owned()
    } else {
        format!("ext_authz.{stat_prefix}.")
    }
}

/// Defines the counters `names` under `prefix`, their ids into `ids` in the same order. One loop
/// over a table, rather than a call per counter written out, is fewer bytes of module.
pub fn define_counters(
    host: &impl Host,
    prefix: &str,
    names: &[&str],
    ids: &mut [u32],
) -> Result<(), HostStatus> {
    let mut name = String::with_capacity(prefix.len() + 24);
    for (&counter, id) in names.iter().zip(ids) {
        name.clear();
        name.push_str(prefix);
        name.push_str(counter);
        *id = host.define_metric(MetricKind::Counter, &name)?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    ok: u32,
    denied: u32,
    error: u32,
    failure_mode_allowed: u32,
    disabled: u32,
    invalid: u32,
    shadow_denied: u32,
    shadow_error: u32,
    retry: u32,
    check_latency: u32,
}

impl Stats {
    pub fn define(host: &impl Host, stat_prefix: &str) -> Result<Self, HostStatus> {
        let prefix = prefix(stat_prefix);
        let mut ids = [0; 9];
        define_counters(
            host,
            &prefix,
            &[
                "ok",
                "denied",
                "error",
                "failure_mode_allowed",
                "disabled",
                "invalid",
                "shadow_denied",
                "shadow_error",
                "retry",
            ],
            &mut ids,
        )?;
        let [ok, denied, error, failure_mode_allowed, disabled, invalid, shadow_denied, shadow_error, retry] =
            ids;
        Ok(Self {
            ok,
            denied,
            error,
            failure_mode_allowed,
            disabled,
            invalid,
            shadow_denied,
            shadow_error,
            retry,
            check_latency: host
                .define_metric(MetricKind::Histogram, &format!("{prefix}check_latency_ms"))?,
        })
    }

    /// A request a `disabled` route let through unchecked.
    pub fn record_disabled(&self, host: &impl Host) {
        host.increment_metric(self.disabled);
    }

    /// `shadow_mode`: a denial that was not enforced.
    pub fn record_shadow_denied(&self, host: &impl Host) {
        host.increment_metric(self.shadow_denied);
    }

    /// `shadow_mode`: a failure that was not enforced.
    pub fn record_shadow_error(&self, host: &impl Host) {
        host.increment_metric(self.shadow_error);
    }

    /// `http_service.retry_policy`: one more try of an authorization request.
    pub fn record_retry(&self, host: &impl Host) {
        host.increment_metric(self.retry);
    }

    /// How long one call to an auth server took, answered or failed.
    pub fn record_latency(&self, host: &impl Host, elapsed: Duration) {
        host.record_metric(self.check_latency, millis(elapsed));
    }

    /// Counts a decision as native does: an error let through counts as error and as allowed;
    /// an answer that could not be read counts as invalid too.
    pub fn record(&self, host: &impl Host, decision: &Decision, failure_mode: FailureMode) {
        let count = |metric| host.increment_metric(metric);
        match decision {
            Decision::Allow(_) => count(self.ok),
            Decision::Deny(_) => count(self.denied),
            Decision::Invalid(invalid) => {
                if invalid.denied {
                    count(self.denied);
                }
                count(self.invalid);
            }
            Decision::Error(error) => {
                count(self.error);
                if matches!(error, CheckError::Undecodable(_)) {
                    count(self.invalid);
                }
                if matches!(failure_mode, FailureMode::Allow { .. }) {
                    count(self.failure_mode_allowed);
                }
            }
        }
    }
}

/// A duration in whole milliseconds, as stats, metadata and log lines give it. Formatting an
/// integer, never a `Duration` (`{:?}`) or the `u128` of `as_millis`, keeps both formatters out
/// of the module.
pub fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}
