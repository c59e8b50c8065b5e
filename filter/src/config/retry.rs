//! `retry_policy` of `grpc_service` and `http_service`: native `envoy.config.core.v3.RetryPolicy`
//! (`num_retries`, `retry_back_off`, `retry_on`), read as native reads it.
//!
//! For HTTP the filter retries itself (the host's HTTP call has no retry option): see
//! [`HttpRetry`] and `stream::retry`.
//!
//! For gRPC the policy travels inside the serialized `GrpcService` the call is dispatched with,
//! so Envoy's own gRPC client retries exactly as it does for native ext_authz (its `retry_on`
//! tokens, each try bounded by `retry_back_off.max_interval`, the call's timeout over all tries).

use super::reader::message;
use std::time::Duration;

use serde::Deserialize;

use super::duration::ProtoDuration;
use super::error::ConfigError;
use crate::proto::wire;

/// Native `envoy.config.core.v3.RetryPolicy`, without the host selection fields.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRetryPolicy {
    /// The back-off between tries; its `max_interval` also bounds each try.
    #[serde(default, alias = "retryBackOff")]
    pub retry_back_off: Option<RawBackoffStrategy>,
    /// How many retries after the first try; Envoy's default is 1.
    #[serde(default, alias = "numRetries")]
    pub num_retries: Option<u32>,
    /// Comma-separated conditions, as the router's `x-envoy-retry-on` and
    /// `x-envoy-retry-grpc-on` take them (`unavailable`, `reset`, `5xx`, ...). Unset, nothing is
    /// retried.
    #[serde(default, alias = "retryOn")]
    pub retry_on: String,
}

/// Native `envoy.config.core.v3.BackoffStrategy`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawBackoffStrategy {
    /// At least 0.001s.
    #[serde(alias = "baseInterval")]
    pub base_interval: ProtoDuration,
    /// At least base_interval; default ten times it.
    #[serde(default, alias = "maxInterval")]
    pub max_interval: Option<ProtoDuration>,
}

/// A validated retry policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub num_retries: Option<u32>,
    pub base_interval: Option<Duration>,
    pub max_interval: Option<Duration>,
    pub retry_on: String,
}

pub(super) fn retry_policy(field: &str, raw: RawRetryPolicy) -> Result<RetryPolicy, ConfigError> {
    let (base_interval, max_interval) = match raw.retry_back_off {
        None => (None, None),
        Some(back_off) => {
            let base = back_off.base_interval.0;
            if base < Duration::from_millis(1) {
                return Err(ConfigError::new(
                    format!("{field}.retry_back_off.base_interval"),
                    "must be at least 0.001s",
                ));
            }
            let max = back_off.max_interval.map(|m| m.0);
            if max.is_some_and(|max| max < base) {
                return Err(ConfigError::new(
                    format!("{field}.retry_back_off.max_interval"),
                    "must be at least base_interval",
                ));
            }
            (Some(base), max)
        }
    };
    Ok(RetryPolicy {
        num_retries: raw.num_retries,
        base_interval,
        max_interval,
        retry_on: raw.retry_on,
    })
}

impl RetryPolicy {
    /// Writes the policy as a `RetryPolicy` message's fields.
    pub(super) fn encode(&self, buf: &mut Vec<u8>) {
        if let Some(base) = self.base_interval {
            wire::message_field(buf, 1, |back_off| {
                wire::message_field(back_off, 1, |d| duration(d, base));
                if let Some(max) = self.max_interval {
                    wire::message_field(back_off, 2, |d| duration(d, max));
                }
            });
        }
        if let Some(retries) = self.num_retries {
            wire::message_field(buf, 2, |value| {
                wire::varint_field(value, 1, u64::from(retries));
            });
        }
        wire::string_field(buf, 3, self.retry_on.as_bytes());
    }
}

/// Native's back-off defaults when `retry_back_off` is unset (`convertCoreToRouteRetryPolicy`).
const DEFAULT_BASE_INTERVAL: Duration = Duration::from_millis(1000);

/// `http_service.retry_policy`, as the filter applies it: which failed tries are tried again, how
/// often, and how long each try may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpRetry {
    /// Retries after the first try; native's default is 1.
    pub num_retries: u32,
    /// Each try's bound, as native's: `retry_back_off.max_interval` (default ten times
    /// `base_interval`, itself 1 s by default). The service's `timeout` bounds all tries together.
    pub per_try_timeout: Duration,
    /// The back-off between tries: `retry_back_off`, or native's defaults.
    pub base_interval: Duration,
    pub max_interval: Duration,
    pub on: RetryOn,
}

impl HttpRetry {
    /// The wait before retry `n` (1 for the first), as Envoy's jittered back-off
    /// (`JitteredExponentialBackOffStrategy`): `random` modulo a window of `(2^k - 1)` base
    /// intervals, at most `max_interval`, where `k` grows by one per retry until the window
    /// passes `max_interval`. In whole milliseconds, as Envoy counts.
    pub fn back_off(&self, n: u32, random: u64) -> Duration {
        let base = (self.base_interval.as_millis() as u64).max(1);
        let max = self.max_interval.as_millis() as u64;
        let window = |k: u32| ((1u64 << k.min(62)) - 1).saturating_mul(base);
        let mut k = 1;
        for _ in 1..n {
            if window(k) <= max {
                k += 1;
            }
        }
        Duration::from_millis((random % window(k)).min(max))
    }
}

/// The `retry_on` conditions that apply to an HTTP call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// `5xx`: any 5xx answer, and a call that got no answer (reset, refused, timed out).
    pub server_error: bool,
    /// `gateway-error`: 502, 503, 504, and a call that got no answer.
    pub gateway_error: bool,
    /// `reset`, `connect-failure`, `refused-stream`, `reset-before-request`: no answer.
    pub no_answer: bool,
    /// `retriable-4xx`: 409.
    pub conflict: bool,
}

impl RetryOn {
    /// Reads the comma-separated tokens; those about gRPC statuses, or unknown, do not apply to
    /// an HTTP call and are ignored, as native ignores the tokens it does not know.
    pub fn parse(tokens: &str) -> Self {
        let mut on = Self::default();
        for token in tokens.split(',').map(str::trim) {
            match token {
                "5xx" => on.server_error = true,
                "gateway-error" => on.gateway_error = true,
                "reset" | "connect-failure" | "refused-stream" | "reset-before-request" => {
                    on.no_answer = true;
                }
                "retriable-4xx" => on.conflict = true,
                _ => {}
            }
        }
        on
    }

    /// Whether a try that ended with `status` (`None`: no answer at all) is tried again.
    pub fn retries(&self, status: Option<u16>) -> bool {
        match status {
            None => self.server_error || self.gateway_error || self.no_answer,
            Some(500..=599) if self.server_error => true,
            Some(502..=504) => self.gateway_error,
            Some(409) => self.conflict,
            Some(_) => false,
        }
    }
}

impl RetryPolicy {
    /// The policy of an HTTP service.
    pub fn for_http(&self) -> HttpRetry {
        let base = self.base_interval.unwrap_or(DEFAULT_BASE_INTERVAL);
        let max = self.max_interval.unwrap_or(base * 10);
        HttpRetry {
            num_retries: self.num_retries.unwrap_or(1),
            per_try_timeout: max,
            base_interval: base,
            max_interval: max,
            on: RetryOn::parse(&self.retry_on),
        }
    }
}

/// A `google.protobuf.Duration`'s fields.
fn duration(buf: &mut Vec<u8>, value: Duration) {
    wire::varint_field(buf, 1, value.as_secs());
    wire::varint_field(buf, 2, u64::from(value.subsec_nanos()));
}

message!(RawRetryPolicy {
    "retry_back_off" => retry_back_off,
    "num_retries" => num_retries,
    "retry_on" => retry_on,
});

message!(RawBackoffStrategy {
    "base_interval" => base_interval required,
    "max_interval" => max_interval,
});

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use envoy_types::pb::envoy::config::core::v3::GrpcService as PbGrpcService;
    use prost::Message;

    use crate::config::Config;

    fn target(json: &str) -> PbGrpcService {
        let config = Config::parse(json.as_bytes()).unwrap();
        PbGrpcService::decode(config.service.grpc().unwrap().target.as_slice()).unwrap()
    }

    #[test]
    fn a_grpc_retry_policy_travels_in_the_grpc_service() {
        let service = target(
            r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "authz"}, "retry_policy": {
                "num_retries": 3, "retry_on": "unavailable,reset",
                "retry_back_off": {"base_interval": "0.025s", "max_interval": "1.5s"}}}}"#,
        );
        let policy = service.retry_policy.unwrap();
        assert_eq!(policy.num_retries.unwrap().value, 3);
        assert_eq!(policy.retry_on, "unavailable,reset");
        let back_off = policy.retry_back_off.unwrap();
        let base = back_off.base_interval.unwrap();
        assert_eq!((base.seconds, base.nanos), (0, 25_000_000));
        let max = back_off.max_interval.unwrap();
        assert_eq!((max.seconds, max.nanos), (1, 500_000_000));
        // Zero retries is a value, not unset.
        let none = target(
            r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "authz"}, "retryPolicy": {"numRetries": 0}}}"#,
        );
        assert_eq!(none.retry_policy.unwrap().num_retries.unwrap().value, 0);
        let unset = target(r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "authz"}}}"#);
        assert_eq!(unset.retry_policy, None);
    }

    #[test]
    fn http_conditions_are_read_as_the_router_reads_them() {
        use super::RetryOn;
        let on = RetryOn::parse("5xx");
        assert!(on.retries(None) && on.retries(Some(500)) && on.retries(Some(503)));
        assert!(!on.retries(Some(409)) && !on.retries(Some(403)));
        let gateway = RetryOn::parse("gateway-error, unavailable, bogus");
        assert!(gateway.retries(Some(502)) && !gateway.retries(Some(500)));
        let reset = RetryOn::parse("reset");
        assert!(reset.retries(None) && !reset.retries(Some(503)));
        assert!(RetryOn::parse("retriable-4xx").retries(Some(409)));
        assert_eq!(RetryOn::parse(""), RetryOn::default());
    }

    #[test]
    fn a_back_off_is_judged_as_natives() {
        for (back_off, field) in [
            (r#"{"base_interval": "0s"}"#, "base_interval"),
            (
                r#"{"base_interval": "1s", "max_interval": "0.5s"}"#,
                "max_interval",
            ),
        ] {
            let json = format!(
                r#"{{"grpc_service": {{"envoy_grpc": {{"cluster_name": "authz"}}, "retry_policy": {{"retry_back_off": {back_off}}}}}}}"#
            );
            let error = Config::parse(json.as_bytes()).unwrap_err();
            assert_eq!(
                error.field,
                format!("grpc_service.retry_policy.retry_back_off.{field}")
            );
        }
    }

    #[test]
    fn the_http_back_off_is_envoys_jittered_exponential_window() {
        use super::{HttpRetry, RetryOn};
        use std::time::Duration;
        let ms = Duration::from_millis;
        let retry = HttpRetry {
            num_retries: 5,
            per_try_timeout: ms(400),
            base_interval: ms(100),
            max_interval: ms(400),
            on: RetryOn::default(),
        };
        // The first retry draws within one base interval, the second within three.
        assert_eq!(retry.back_off(1, 250), ms(50));
        assert_eq!(retry.back_off(2, 250), ms(250));
        // The third's window is seven, past max_interval: capped.
        assert_eq!(retry.back_off(3, 650), ms(400));
        assert_eq!(retry.back_off(3, 350), ms(350));
        // Once past max_interval the window stops growing.
        assert_eq!(retry.back_off(4, 1_500), ms(100));
        for random in 0..2_000 {
            assert!(retry.back_off(1, random) < ms(100));
            assert!(retry.back_off(2, random) < ms(300));
            assert!(retry.back_off(9, random) <= ms(400));
        }
    }
}
