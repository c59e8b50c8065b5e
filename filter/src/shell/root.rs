//! The root context: parses and validates the plugin configuration once, in `on_configure`, and
//! hands every request an `Rc` of it.

use std::rc::Rc;

use super::abi::{Context, HttpContext, RootContext};

use super::apply;
use super::host::{self, LogLevel};
use super::http::{ExtAuthz, Unconfigured};
use super::stats::Stats;
use crate::body_watch::{self, BodyWatch};
use crate::config::Config;
use crate::decision::{CheckError, Decision, Verdict};

/// What every request of a configured plugin shares.
pub struct Plugin {
    pub config: Config,
    pub stats: Stats,
    /// Requests held for a body that may never be delivered (see [`body_watch`]).
    pub body_watch: BodyWatch,
}

#[derive(Default)]
pub struct ExtAuthzRoot {
    plugin: Option<Rc<Plugin>>,
}

impl Context for ExtAuthzRoot {}

impl RootContext for ExtAuthzRoot {
    /// Returning false makes Envoy refuse the plugin: a bad config is never found per request.
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = match host::plugin_configuration() {
            Ok(bytes) => bytes,
            Err(status) => {
                host::log(
                    LogLevel::Error,
                    &format!(
                        "ext_authz: cannot read the plugin configuration (host status {status})"
                    ),
                );
                return false;
            }
        };
        let config = match Config::parse(&bytes) {
            Ok(config) => config,
            Err(error) => {
                host::log(
                    LogLevel::Error,
                    &format!("ext_authz: invalid plugin configuration: {error}"),
                );
                return false;
            }
        };
        let stats = match Stats::define(&config.stat_prefix) {
            Ok(stats) => stats,
            Err(status) => {
                host::log(
                    LogLevel::Error,
                    &format!("ext_authz: cannot define stats (host status {status})"),
                );
                return false;
            }
        };
        host::log(
            LogLevel::Info,
            &format!(
                "ext_authz: configured: cluster {:?}, timeout {:?}",
                config.service.cluster(),
                config.service.timeout()
            ),
        );
        if config.sends_bodies() {
            if let Err(status) = host::set_tick_period(body_watch::TICK) {
                host::log(
                    LogLevel::Warn,
                    &format!("ext_authz: cannot start the body watch (host status {status})"),
                );
            }
        }
        self.plugin = Some(Rc::new(Plugin {
            config,
            stats,
            body_watch: BodyWatch::default(),
        }));
        true
    }

    /// Fails the requests that waited too long for a body Envoy does not deliver.
    fn on_tick(&mut self) {
        let Some(plugin) = &self.plugin else {
            return;
        };
        if plugin.body_watch.delivered() {
            // Body callbacks work here: nothing more to watch.
            let _ = host::set_tick_period(std::time::Duration::ZERO);
            return;
        }
        let due = plugin.body_watch.expire(host::now().unwrap_or_default());
        if due.is_empty() {
            return;
        }
        if plugin.body_watch.first_warning() {
            host::log(
                LogLevel::Error,
                &format!("ext_authz: {}", CheckError::BodyNotDelivered),
            );
        }
        let failure_mode = plugin.config.failure_mode;
        for context_id in due {
            // Act on the request's stream, as its own context would.
            if host::set_effective_context(context_id).is_err() {
                continue;
            }
            let decision = Decision::Error(CheckError::BodyNotDelivered);
            plugin.stats.record(&decision, failure_mode);
            match decision.into_verdict(failure_mode) {
                Verdict::Continue(allow) => {
                    apply::allow(context_id, allow);
                    apply::resume(context_id);
                }
                Verdict::Reply(reply) => apply::reply(context_id, &reply),
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never None: a stream without a context would not be checked. A plugin without a
        // config fails every request closed.
        Some(match &self.plugin {
            Some(plugin) => Box::new(ExtAuthz::new(context_id, Rc::clone(plugin))),
            None => Box::new(Unconfigured),
        })
    }
}
