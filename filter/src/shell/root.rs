//! The root context: makes the [`Plugin`] once, in `on_configure`, hands every request an `Rc` of
//! it, and runs the tick that wakes HTTP retries after their back-off and the body watch.

use std::rc::Rc;

use super::abi::{self, Context, HttpContext, RootContext};
use super::host::WasmHost;
use super::stream::{Stream, Unconfigured};
use crate::host::{Host, LogLevel};
use crate::plugin::Plugin;

#[derive(Default)]
pub struct ExtAuthzRoot {
    plugin: Option<Rc<Plugin>>,
}

impl Context for ExtAuthzRoot {}

impl RootContext for ExtAuthzRoot {
    /// Returning false makes Envoy refuse the plugin: a bad config is never found per request.
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let host = WasmHost;
        let plugin = host
            .plugin_configuration()
            .map_err(|status| {
                format!("cannot read the plugin configuration (host status {status})")
            })
            .and_then(|bytes| Plugin::configure(&host, &bytes));
        let plugin = match plugin {
            Ok(plugin) => plugin,
            Err(why) => {
                // One log line per problem, so that each reads on its own.
                for line in why.lines() {
                    host.log(LogLevel::Error, &format!("ext_authz: {line}"));
                }
                return false;
            }
        };
        plugin.retick(&host, host.now().unwrap_or_default());
        self.plugin = Some(Rc::new(plugin));
        true
    }

    /// Wakes the HTTP retries whose back-off has ended, and tells the requests that waited too
    /// long for a body Envoy does not deliver; each one goes on or ends itself. Then sets the
    /// tick to what is still watched.
    fn on_tick(&mut self) {
        let Some(plugin) = &self.plugin else {
            return;
        };
        let host = WasmHost;
        let now = host.now().unwrap_or_default();
        for context_id in plugin.retry_queue.due(now) {
            // Act on the request's stream, as its own context would.
            if host.set_effective_context(context_id).is_ok() {
                abi::with_http_context(context_id, |stream| stream.on_retry_due());
            }
        }
        if !plugin.body_watch.delivered() {
            for context_id in plugin.overdue_body_waits(&host, now) {
                if host.set_effective_context(context_id).is_ok() {
                    abi::with_http_context(context_id, |stream| stream.on_body_timeout());
                }
            }
        }
        plugin.retick(&host, now);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never None: a stream without a context would not be checked. A plugin without a
        // config fails every request closed.
        Some(match &self.plugin {
            Some(plugin) => Box::new(Stream::new(context_id, Rc::clone(plugin))),
            None => Box::new(Unconfigured),
        })
    }
}
