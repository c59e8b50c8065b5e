//! The root context: parses and validates the plugin configuration once, in `on_configure`, and
//! hands every request an `Rc` of it.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::host::{self, LogLevel};
use super::http::{ExtAuthz, Unconfigured};
use super::stats::Stats;
use crate::config::Config;

/// What every request of a configured plugin shares.
pub struct Plugin {
    pub config: Config,
    pub stats: Stats,
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
                config.grpc_service.cluster_name, config.grpc_service.timeout
            ),
        );
        self.plugin = Some(Rc::new(Plugin { config, stats }));
        true
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never None: the SDK panics on it. A plugin without a config fails every request closed.
        Some(match &self.plugin {
            Some(plugin) => Box::new(ExtAuthz::new(context_id, Rc::clone(plugin))),
            None => Box::new(Unconfigured),
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
