//! What every request of a configured plugin shares: the validated config, the metric ids, the
//! watch over requests held for a body, the HTTP retries waiting out their back-off, and the
//! root's tick that serves both. Made once, in `on_configure`.

use std::cell::Cell;
use std::time::Duration;

use crate::body_watch::{self, BodyWatch};
use crate::cache::Cache;
use crate::config::{Config, ConfigErrors};
use crate::decision::CheckError;
use crate::host::{Host, LogLevel};
use crate::retry_queue::RetryQueue;
use crate::sampler::Sampler;
use crate::stats::Stats;

pub struct Plugin {
    pub config: Config,
    pub stats: Stats,
    /// Requests held for a body that may never be delivered (see [`crate::body_watch`]).
    pub body_watch: BodyWatch,
    /// `decision_cache`, when configured.
    pub cache: Option<Cache>,
    /// The draws `filter_enabled` samples with, and HTTP retries' back-off jitter.
    pub sampler: Sampler,
    /// HTTP retries waiting out their back-off (see [`crate::retry_queue`]).
    pub retry_queue: RetryQueue,
    /// The root's tick period as last set; zero, stopped; `MAX`, not set yet (so that the first
    /// retick, in `on_configure`, also stops a tick an earlier configuration left running).
    tick: Cell<Duration>,
}

/// The most problems of a config Envoy's log gets at load, one line each; the checker shows all.
const LOGGED_PROBLEMS: usize = 10;

impl Plugin {
    /// Parses and validates the plugin configuration and defines the metrics. An error is the
    /// reason to refuse the plugin, for Envoy's log: one line per problem of the config.
    pub fn configure(host: &impl Host, configuration: &[u8]) -> Result<Self, String> {
        let config = Config::parse_all(configuration).map_err(|errors| refusal(&errors))?;
        let stats = Stats::define(host, &config.stat_prefix)
            .map_err(|status| format!("cannot define stats (host status {status})"))?;
        let cache = Cache::configure(
            host,
            config.decision_cache.as_ref(),
            configuration,
            &config.stat_prefix,
        )
        .map_err(|status| format!("cannot define the cache's stats (host status {status})"))?;
        host.log(
            LogLevel::Info,
            &format!(
                "ext_authz: configured: cluster {:?}, timeout {} ms",
                config.service.cluster(),
                crate::stats::millis(config.service.timeout())
            ),
        );
        Ok(Self {
            config,
            stats,
            body_watch: BodyWatch::default(),
            cache,
            sampler: Sampler::seeded(host.now().map_or(0, |t| t.as_nanos() as u64)),
            retry_queue: RetryQueue::default(),
            tick: Cell::new(Duration::MAX),
        })
    }

    /// Sets the root's tick to what is watched now: the first retry's back-off, else the body
    /// watch's period while bodies may go unseen, else no tick. Only a change reaches the host.
    pub fn retick(&self, host: &impl Host, now: Duration) {
        let body_watch = (self.config.sends_bodies() && !self.body_watch.delivered())
            .then_some(body_watch::TICK);
        let period = match (self.retry_queue.next_wake(now), body_watch) {
            (Some(retry), Some(body)) => retry.min(body),
            (retry, body) => retry.or(body).unwrap_or(Duration::ZERO),
        };
        if period == self.tick.get() {
            return;
        }
        match host.set_tick_period(period) {
            Ok(()) => self.tick.set(period),
            Err(status) => host.log(
                LogLevel::Warn,
                &format!("ext_authz: cannot set the tick period (host status {status})"),
            ),
        }
    }

    /// The requests that have waited too long for a body Envoy does not deliver; the first time
    /// there are any, the log says what to set.
    pub fn overdue_body_waits(&self, host: &impl Host, now: Duration) -> Vec<u32> {
        let due = self.body_watch.expire(now);
        if !due.is_empty() && self.body_watch.first_warning() {
            host.log(
                LogLevel::Error,
                &format!("ext_authz: {}", CheckError::BodyNotDelivered),
            );
        }
        due
    }
}

/// The lines Envoy's log gets for a refused config: `invalid plugin configuration: <field>:
/// <reason>`, numbered when there are several.
fn refusal(errors: &ConfigErrors) -> String {
    let count = errors.len();
    let mut out = String::new();
    for (i, line) in errors.lines(LOGGED_PROBLEMS).iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if count > 1 && i < LOGGED_PROBLEMS.min(count) {
            out.push_str(&format!(
                "invalid plugin configuration ({} of {count}): {line}",
                i + 1
            ));
        } else {
            out.push_str(&format!("invalid plugin configuration: {line}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    use super::*;
    use crate::mock_host::MockHost;

    #[test]
    fn a_refused_config_gets_a_numbered_line_per_problem() {
        let config =
            r#"{"grpc_service": {"envoy_grpc": {"cluster_name": ""}}, "failure_mode_alow": true}"#;
        let Err(why) = Plugin::configure(&MockHost::new(), config.as_bytes()) else {
            panic!("accepted {config}");
        };
        assert_eq!(
            why.lines().collect::<Vec<_>>(),
            [
                "invalid plugin configuration (1 of 2): failure_mode_alow: unknown field `failure_mode_alow`: did you mean `failure_mode_allow`?",
                "invalid plugin configuration (2 of 2): grpc_service.envoy_grpc.cluster_name: must not be empty",
            ]
        );
        let one = r#"{"grpc_service": {"envoy_grpc": {"cluster_name": ""}}}"#;
        let Err(why) = Plugin::configure(&MockHost::new(), one.as_bytes()) else {
            panic!("accepted {one}");
        };
        assert_eq!(
            why,
            "invalid plugin configuration: grpc_service.envoy_grpc.cluster_name: must not be empty"
        );
    }

    #[test]
    fn past_ten_problems_the_log_says_how_many_more() {
        let fields: Vec<String> = (0..12).map(|i| format!(r#""x{i:02}": 1"#)).collect();
        let config = format!(
            r#"{{"grpc_service": {{"envoy_grpc": {{"cluster_name": "c"}}}}, {}}}"#,
            fields.join(", ")
        );
        let Err(why) = Plugin::configure(&MockHost::new(), config.as_bytes()) else {
            panic!("accepted {config}");
        };
        let lines: Vec<&str> = why.lines().collect();
        assert_eq!(lines.len(), 11, "{why}");
        assert!(
            lines[9].starts_with("invalid plugin configuration (10 of 12): x09: "),
            "{why}"
        );
        assert_eq!(
            lines[10],
            "invalid plugin configuration: and 2 more (`ext-authz-config check` lists them all)"
        );
    }
}
