//! What every request of a configured plugin shares: the validated config, the metric ids, and
//! the watch over requests held for a body. Made once, in `on_configure`.

use std::time::Duration;

use crate::body_watch::BodyWatch;
use crate::config::Config;
use crate::decision::CheckError;
use crate::host::{Host, LogLevel};
use crate::sampler::Sampler;
use crate::stats::Stats;

pub struct Plugin {
    pub config: Config,
    pub stats: Stats,
    /// Requests held for a body that may never be delivered (see [`crate::body_watch`]).
    pub body_watch: BodyWatch,
    /// The draws `filter_enabled` samples with.
    pub sampler: Sampler,
}

impl Plugin {
    /// Parses and validates the plugin configuration and defines the metrics. An error is the
    /// reason to refuse the plugin, for Envoy's log.
    pub fn configure(host: &impl Host, configuration: &[u8]) -> Result<Self, String> {
        let config = Config::parse(configuration)
            .map_err(|error| format!("invalid plugin configuration: {error}"))?;
        let stats = Stats::define(host, &config.stat_prefix)
            .map_err(|status| format!("cannot define stats (host status {status})"))?;
        host.log(
            LogLevel::Info,
            &format!(
                "ext_authz: configured: cluster {:?}, timeout {:?}",
                config.service.cluster(),
                config.service.timeout()
            ),
        );
        Ok(Self {
            config,
            stats,
            body_watch: BodyWatch::default(),
            sampler: Sampler::seeded(host.now().map_or(0, |t| t.as_nanos() as u64)),
        })
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
