//! The plugin configuration: the JSON a user writes in the Wasm filter's `configuration`, parsed and
//! validated once in `on_configure` into a [`Config`] that requests only read.
//!
//! Field names, formats and defaults follow Envoy's native ext_authz filter
//! (`envoy.extensions.filters.http.ext_authz.v3.ExtAuthz`), so a native config moves over unchanged.
//! Every error names the field it is about, as a path such as `grpc_service.timeout`.
//!
//! The files form layers; each imports only files below it, and none but `sections` imports this
//! one (for the types of `Config`'s fields):
//!
//! 1. `error` (`ConfigError`, `ConfigErrors`), `duration`, `json_path`, `proto_integer`,
//!    `refused` (the refused native fields), `advice` (unknown names answered with the one meant),
//!    `every_error` (every error of a reading, not only the first), `reader` (the JSON tree read
//!    into the raw types by their field tables);
//! 2. `messages`: the shared Envoy messages (string matchers, `HeaderValue`, `with_request_body`);
//! 3. `grpc_service`, then `http_service`, `mutation_rules`, `steps`: one section each, raw and
//!    validated side by side;
//! 4. `settings` (a check's service, context and body), then `route` (`routes`, over the settings);
//! 5. `raw`: the whole document as written, and its parse;
//! 6. `sections`: each top-level section judged on its own, into `Config`'s field types;
//! 7. this file: `Config`, its validation section by section, and `select` and `check`.

mod advice;
pub mod decision_cache;
pub mod duration;
mod error;
mod every_error;
mod filter_enabled;
mod grpc_service;
pub mod http_service;
mod json_path;
mod messages;
mod mutation_rules;
mod proto_integer;
mod raw;
mod reader;
#[cfg(test)]
mod reader_reference;
mod refused;
mod retry;
mod route;
mod sections;
mod settings;
pub mod steps;

pub use error::{ConfigError, ConfigErrors};
pub use filter_enabled::FilterEnabled;
pub use grpc_service::{GrpcService, DEFAULT_TIMEOUT};
pub use http_service::HttpService;
pub use messages::{is_header_name, is_header_value, WithRequestBody};
pub use route::{Route, RouteAction};
pub use settings::{CheckSettings, ContextExtensions, Service};

use raw::RawConfig;
use sections::{
    failure_mode, headers, max_request_headers_kb, metadata, mutations, routes, service,
    status_on_error, top_settings, transport_api_version,
};

use crate::mutation_rules::MutationPolicy;
use crate::route::matcher::RequestView;

/// The default `status_on_error`, as native: 403 Forbidden.
pub const DEFAULT_STATUS_ON_ERROR: u16 = 403;

/// A validated plugin configuration, shared by every request of a plugin instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The top-level auth server.
    pub service: Service,
    pub failure_mode: FailureMode,
    /// `status_on_error`, also under `failure_mode_allow` (for `deny_at_disable` and shadow mode).
    pub status_on_error: u16,
    /// Encoded once here, copied into every CheckRequest: the `context_extensions` map entries.
    pub context_extensions: ContextExtensions,
    /// `with_request_body`: when set, the body goes to the auth server.
    pub with_request_body: Option<WithRequestBody>,
    pub stat_prefix: String,
    /// Per-route settings, first match wins; no match means the top-level settings above.
    pub routes: Vec<Route>,
    /// Which request headers go into a CheckRequest, and how.
    pub headers: HeaderSelection,
    /// What goes into a CheckRequest's `metadata_context` and `route_metadata_context`.
    pub metadata: MetadataSelection,
    /// `include_tls_session`: the SNI goes in `attributes.tls_session`.
    pub include_tls_session: bool,
    /// `include_forwarded_source_address`: see [`crate::check_request::SocketAddress::source`].
    pub include_forwarded_source_address: bool,
    /// `validate_mutations` and `decoder_header_mutation_rules`.
    pub mutations: MutationPolicy,
    /// `enable_dynamic_metadata_ingestion`: hand the servers' `dynamic_metadata` on (default).
    pub dynamic_metadata_ingestion: bool,
    /// `max_denied_response_body_bytes`: a denial's body is cut to this; 0, not at all.
    pub max_denied_response_body_bytes: u32,
    /// `propagate_trace_context` (this filter's own, default true): see [`crate::trace_context`].
    pub propagate_trace_context: bool,
    /// `decision_cache`: answers kept and shared across workers; `None`, every request is asked.
    pub decision_cache: Option<decision_cache::DecisionCache>,
    /// `shadow_mode`: decisions are counted and recorded, never enforced (see `stream::shadow`).
    pub shadow_mode: bool,
    /// `filter_enabled`'s default: the share of requests checked.
    pub filter_enabled: FilterEnabled,
    /// `deny_at_disable`'s default: a request left unchecked gets this status instead of going on.
    pub deny_at_disable: Option<u16>,
    /// `max_request_headers_kb`, in bytes: the most the request's headers may take after changes.
    pub max_request_headers_bytes: usize,
}

/// Envoy's default `max_request_headers_kb`.
pub const DEFAULT_MAX_REQUEST_HEADERS_KB: u32 = 60;

/// Metadata sent to the auth server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataSelection {
    /// `metadata_context_namespaces`: from the stream's dynamic metadata.
    pub dynamic_namespaces: Vec<String>,
    /// `route_metadata_context_namespaces`: from the route's metadata.
    pub route_namespaces: Vec<String>,
    /// `typed_metadata_context_namespaces`: from the stream's typed dynamic metadata.
    pub typed_dynamic_namespaces: Vec<String>,
    /// `route_typed_metadata_context_namespaces`: from the route's typed metadata.
    pub typed_route_namespaces: Vec<String>,
    /// `metadata_context`: namespace and encoded Struct, fixed at configure time.
    pub fixed: Vec<(String, Vec<u8>)>,
}

pub use crate::check_request::HeaderSelection;

/// The settings a request gets: its route's, or the top-level ones.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    pub service: &'a Service,
    pub context_extensions: &'a ContextExtensions,
    pub with_request_body: Option<WithRequestBody>,
}

/// Which settings apply to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// No route matched: the top-level settings.
    TopLevel,
    /// `routes[i]` matched and is checked with its settings.
    Route(usize),
    /// The matching route is `disabled`.
    Disabled,
}

/// What happens when the check cannot be made or its answer cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Fail closed (the default): answer the client with `status_on_error`.
    Deny { status_on_error: u16 },
    /// `failure_mode_allow`: let the request go on, marked with
    /// `x-envoy-auth-failure-mode-allowed: true` when `add_header` (`failure_mode_allow_header_add`).
    Allow { add_header: bool },
}

impl Config {
    /// Parses and validates the plugin configuration; its first error if it has any.
    pub fn parse(json: &[u8]) -> Result<Self, ConfigError> {
        Self::parse_all(json).map_err(ConfigErrors::into_first)
    }

    /// Parses and validates the plugin configuration, with every error it has (up to
    /// `every_error::MAX_ERRORS`). The only place a config is judged.
    pub fn parse_all(json: &[u8]) -> Result<Self, ConfigErrors> {
        let mut removals = every_error::Removals::default();
        let mut errors = ConfigErrors::default();
        match RawConfig::read(json, &mut removals, &mut errors).map(Self::validate) {
            Some(Ok(config)) if errors.is_empty() => Ok(config),
            Some(Err(more)) => {
                removals.add(more, &mut errors);
                Err(errors)
            }
            _ => Err(errors),
        }
    }

    /// Judges each section in turn, in the order its errors have always come; a section's error
    /// does not keep the next sections from being judged.
    fn validate(raw: RawConfig) -> Result<Self, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let service = errors.take(service(
            raw.grpc_service,
            raw.http_service,
            raw.steps,
            raw.timeout,
        ));
        let status_on_error = errors.take(status_on_error(raw.status_on_error.as_ref()));
        let failure_mode = errors.take(failure_mode(
            status_on_error.unwrap_or(DEFAULT_STATUS_ON_ERROR),
            raw.failure_mode_allow,
            raw.failure_mode_allow_header_add,
        ));
        errors.take(transport_api_version(raw.transport_api_version));
        let top = service.and_then(|service| {
            errors.take(top_settings(
                service,
                raw.context_extensions,
                raw.with_request_body,
            ))
        });
        // Without a top level, routes are still judged for their own errors, over a stand-in.
        let stand_in = CheckSettings {
            service: Service::Steps(steps::Steps {
                steps: Vec::new(),
                deadline: std::time::Duration::ZERO,
            }),
            context_extensions: ContextExtensions::default(),
            with_request_body: None,
        };
        let routes = errors.take_all(routes(raw.routes, top.as_ref().unwrap_or(&stand_in)));
        let headers = errors.take(headers(
            raw.allowed_headers,
            raw.disallowed_headers,
            raw.encode_raw_headers,
        ));
        if let (Some(top), Some(headers)) = (&top, &headers) {
            let top_http = match &top.service {
                Service::Http(http) => Some(http),
                Service::Grpc(_) | Service::Steps(_) => None,
            };
            errors.take(http_service::one_allowed_headers(
                top_http,
                headers.allowed.is_some(),
            ));
        }
        let metadata = errors.take(metadata(
            MetadataSelection {
                dynamic_namespaces: raw.metadata_context_namespaces,
                route_namespaces: raw.route_metadata_context_namespaces,
                typed_dynamic_namespaces: raw.typed_metadata_context_namespaces,
                typed_route_namespaces: raw.route_typed_metadata_context_namespaces,
                fixed: Vec::new(),
            },
            raw.metadata_context,
        ));
        errors.take(refused::CLEAR_ROUTE_CACHE.check(raw.clear_route_cache));
        errors.take(
            refused::ENFORCE_RESPONSE_HEADER_LIMITS.check(Some(raw.enforce_response_header_limits)),
        );
        errors.take(refused::EMIT_CLIENT_SPAN.check(raw.emit_client_span));
        errors.take(refused::INCLUDE_PEER_CERTIFICATE.check(Some(raw.include_peer_certificate)));
        let mutations = errors.take(mutations(
            raw.validate_mutations,
            raw.decoder_header_mutation_rules,
        ));
        let decision_cache = raw
            .decision_cache
            .and_then(|c| errors.take(decision_cache::decision_cache("decision_cache", c)));
        let filter_enabled = errors.take(filter_enabled::filter_enabled(raw.filter_enabled));
        let deny_at_disable = errors.take(filter_enabled::deny_at_disable(raw.deny_at_disable));
        let max_request_headers_bytes =
            errors.take(max_request_headers_kb(raw.max_request_headers_kb));
        let (
            Some(top),
            Some(failure_mode),
            Some(routes),
            Some(headers),
            Some(metadata),
            Some(mutations),
            Some(status_on_error),
            Some(filter_enabled),
            Some(deny_at_disable),
            Some(max_request_headers_bytes),
        ) = (
            top,
            failure_mode,
            routes,
            headers,
            metadata,
            mutations,
            status_on_error,
            filter_enabled,
            deny_at_disable,
            max_request_headers_bytes,
        )
        else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            decision_cache,
            include_tls_session: raw.include_tls_session,
            include_forwarded_source_address: raw.include_forwarded_source_address,
            mutations,
            dynamic_metadata_ingestion: raw.enable_dynamic_metadata_ingestion.unwrap_or(true),
            max_denied_response_body_bytes: raw.max_denied_response_body_bytes,
            propagate_trace_context: raw.propagate_trace_context.unwrap_or(true),
            shadow_mode: raw.shadow_mode,
            filter_enabled,
            deny_at_disable: deny_at_disable.then_some(status_on_error),
            max_request_headers_bytes,
            metadata,
            headers,
            service: top.service,
            failure_mode,
            status_on_error,
            context_extensions: top.context_extensions,
            with_request_body: top.with_request_body,
            stat_prefix: raw.stat_prefix,
            routes,
        })
    }

    /// Whether any request may have its body sent: the top level's or a route's `with_request_body`.
    pub fn sends_bodies(&self) -> bool {
        self.with_request_body.is_some()
            || self.routes.iter().any(|r| {
                matches!(&r.action, RouteAction::Check(settings) if settings.with_request_body.is_some())
            })
    }

    /// Picks the settings for a request: the first route whose match fits, or the top level.
    pub fn select(&self, request: &RequestView<'_>) -> Selection {
        match self.routes.iter().position(|r| r.matcher.matches(request)) {
            None => Selection::TopLevel,
            Some(i) => match self.routes[i].action {
                RouteAction::Disabled => Selection::Disabled,
                RouteAction::Check(_) => Selection::Route(i),
            },
        }
    }

    /// The settings of a selection; `None` for a disabled one.
    pub fn check(&self, selection: Selection) -> Option<Check<'_>> {
        let settings = match selection {
            Selection::Disabled => return None,
            Selection::Route(i) => match self.routes.get(i).map(|r| &r.action) {
                Some(RouteAction::Check(settings)) => settings,
                _ => return None,
            },
            Selection::TopLevel => {
                return Some(Check {
                    service: &self.service,
                    context_extensions: &self.context_extensions,
                    with_request_body: self.with_request_body,
                })
            }
        };
        Some(Check {
            service: &settings.service,
            context_extensions: &settings.context_extensions,
            with_request_body: settings.with_request_body,
        })
    }
}

/// The JSON Schema of the plugin configuration, derived from the serde types that parse it
/// (`tools/ext-authz-config` finishes it and writes `schema/ext_authz.schema.json`).
#[cfg(feature = "schema")]
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(RawConfig)
}

#[cfg(test)]
mod tests;
