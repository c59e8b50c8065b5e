//! The plugin configuration: the JSON a user writes in the Wasm filter's `configuration`, parsed and
//! validated once in `on_configure` into a [`Config`] that requests only read.
//!
//! Field names, formats and defaults follow Envoy's native ext_authz filter
//! (`envoy.extensions.filters.http.ext_authz.v3.ExtAuthz`), so a native config moves over unchanged.
//! Every error names the field it is about, as a path such as `grpc_service.timeout`.

pub mod duration;
pub mod http_service;
mod json_path;
mod mutation_rules;
mod raw;
mod route;
pub mod steps;

pub use http_service::HttpService;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::mutation_rules::MutationPolicy;
use crate::proto::wire;
use crate::route::matcher::{RequestView, RouteMatch};

/// The default `grpc_service.timeout`, as native: 200 ms.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
/// The default `status_on_error`, as native: 403 Forbidden.
pub const DEFAULT_STATUS_ON_ERROR: u16 = 403;

/// A validated plugin configuration, shared by every request of a plugin instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The top-level auth server.
    pub service: Service,
    pub failure_mode: FailureMode,
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
}

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

/// One entry of `routes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub matcher: RouteMatch,
    pub action: RouteAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// `disabled: true`: no check.
    Disabled,
    /// `check_settings`, already merged over the top level.
    Check(Box<CheckSettings>),
}

/// The authorization server a check goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Service {
    Grpc(GrpcService),
    Http(HttpService),
    /// `steps`: several checks in a row.
    Steps(steps::Steps),
}

impl Service {
    pub fn grpc(&self) -> Option<&GrpcService> {
        match self {
            Self::Grpc(grpc) => Some(grpc),
            Self::Http(_) | Self::Steps(_) => None,
        }
    }

    /// The cluster the check goes to, for logs.
    pub fn cluster(&self) -> &str {
        match self {
            Self::Grpc(grpc) => &grpc.cluster_name,
            Self::Http(http) => &http.cluster,
            Self::Steps(_) => "(steps)",
        }
    }

    pub fn timeout(&self) -> Duration {
        match self {
            Self::Grpc(grpc) => grpc.timeout,
            Self::Http(http) => http.timeout,
            Self::Steps(steps) => steps.deadline,
        }
    }
}

/// What a check needs: where it goes, the context it carries, whether the body goes along.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSettings {
    pub service: Service,
    pub context_extensions: ContextExtensions,
    pub with_request_body: Option<WithRequestBody>,
}

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

/// How much of the request body the auth server gets, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WithRequestBody {
    pub max_request_bytes: u32,
    /// Over the limit: send the first `max_request_bytes` (true) or answer 413 (false).
    pub allow_partial_message: bool,
    /// `raw_body` bytes (true) or the `body` string (false).
    pub pack_as_bytes: bool,
}

/// Where the CheckRequest goes and how.
#[derive(Debug, Clone, PartialEq)]
pub struct GrpcService {
    pub cluster_name: String,
    pub authority: String,
    pub timeout: Duration,
    /// Sent as gRPC metadata on every call; keys lower-case.
    pub initial_metadata: Vec<(String, String)>,
    /// `envoy.config.core.v3.GrpcService` serialized, the form `dispatch_grpc_call` takes so that
    /// `authority` and Istio cluster names such as `outbound|9000||authz.ns.svc.cluster.local` work.
    pub target: Vec<u8>,
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

/// `context_extensions`, kept both as a map (for readers) and pre-encoded as CheckRequest
/// `AttributeContext.context_extensions` map entries (for the hot path).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContextExtensions {
    pub entries: BTreeMap<String, String>,
    pub encoded: Vec<u8>,
}

impl ContextExtensions {
    pub fn new(entries: BTreeMap<String, String>) -> Self {
        let mut encoded = Vec::new();
        for (key, value) in &entries {
            wire::map_entry(
                &mut encoded,
                crate::proto::ATTRIBUTES_CONTEXT_EXTENSIONS,
                key.as_bytes(),
                value.as_bytes(),
            );
        }
        Self { entries, encoded }
    }
}

/// A configuration that was refused: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field's path, such as `grpc_service.envoy_grpc.cluster_name`; empty for the whole document.
    pub field: String,
    pub reason: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses and validates the plugin configuration. The only place a config is judged.
    pub fn parse(json: &[u8]) -> Result<Self, ConfigError> {
        let raw = raw::RawConfig::parse(json)?;
        Self::validate(raw)
    }

    fn validate(raw: raw::RawConfig) -> Result<Self, ConfigError> {
        if raw.timeout.is_some() && raw.steps.is_none() {
            return Err(ConfigError::new(
                "timeout",
                "is the deadline of steps; a single service takes its own timeout",
            ));
        }
        let conflict = if raw.steps.is_some() {
            "steps"
        } else {
            "http_service"
        };
        let service = match (raw.grpc_service, raw.http_service, raw.steps) {
            (Some(grpc), None, None) => Service::Grpc(grpc_service("grpc_service", grpc)?),
            (None, Some(http), None) => {
                Service::Http(http_service::http_service("http_service", http)?)
            }
            (None, None, Some(chain)) => Service::Steps(steps::steps(chain, raw.timeout)?),
            (None, None, None) => {
                return Err(ConfigError::new(
                    "grpc_service",
                    "is required (or http_service, or steps): name the auth server's cluster",
                ))
            }
            (_, Some(_), _) | (_, _, Some(_)) => return Err(ConfigError::new(
                conflict,
                "takes the place of the others: name one of grpc_service, http_service and steps",
            )),
        };
        let status_on_error = match raw.status_on_error {
            None => DEFAULT_STATUS_ON_ERROR,
            Some(status) => match u16::try_from(status.code) {
                Ok(code @ 200..=599) => code,
                _ => {
                    return Err(ConfigError::new(
                        "status_on_error.code",
                        format!("{} is not an HTTP status between 200 and 599", status.code),
                    ))
                }
            },
        };
        let failure_mode = if raw.failure_mode_allow {
            FailureMode::Allow {
                add_header: raw.failure_mode_allow_header_add,
            }
        } else {
            FailureMode::Deny { status_on_error }
        };
        if let Some(version) = raw.transport_api_version {
            if version != "V3" {
                return Err(ConfigError::new(
                    "transport_api_version",
                    format!("{version:?} is not supported: only \"V3\" exists"),
                ));
            }
        }
        let top = CheckSettings {
            service,
            context_extensions: context_extensions("context_extensions", raw.context_extensions)?,
            with_request_body: raw
                .with_request_body
                .map(|body| with_request_body("with_request_body", body))
                .transpose()?,
        };
        let routes = raw
            .routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| route(&format!("routes[{i}]"), r, &top))
            .collect::<Result<Vec<_>, _>>()?;
        let headers = HeaderSelection {
            allowed: http_service::list_string_matcher("allowed_headers", raw.allowed_headers)?,
            disallowed: http_service::list_string_matcher(
                "disallowed_headers",
                raw.disallowed_headers,
            )?
            .unwrap_or_default(),
            raw: raw.encode_raw_headers,
        };
        let metadata = MetadataSelection {
            dynamic_namespaces: raw.metadata_context_namespaces,
            route_namespaces: raw.route_metadata_context_namespaces,
            typed_dynamic_namespaces: raw.typed_metadata_context_namespaces,
            typed_route_namespaces: raw.route_typed_metadata_context_namespaces,
            fixed: raw
                .metadata_context
                .map(|m| {
                    m.filter_metadata
                        .iter()
                        .map(|(ns, object)| {
                            (ns.clone(), crate::proto::structpb::encode_struct(object))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        if let Some(at) = metadata.fixed.iter().position(|(ns, _)| ns.is_empty()) {
            return Err(ConfigError::new(
                format!("metadata_context.filter_metadata[{at}]"),
                "a namespace must not be empty",
            ));
        }
        let refuse_true = |set: bool, field: &str, why: &str| {
            if set {
                Err(ConfigError::new(
                    field,
                    format!("true is not supported: {why}"),
                ))
            } else {
                Ok(())
            }
        };
        if raw.clear_route_cache == Some(false) {
            return Err(ConfigError::new(
                "clear_route_cache",
                "false is not supported: Envoy picks the route again after every request header change a wasm filter makes, as native does with true",
            ));
        }
        refuse_true(
            raw.enforce_response_header_limits,
            "enforce_response_header_limits",
            "a wasm filter cannot read the connection manager's header limits",
        )?;
        refuse_true(
            raw.shadow_mode,
            "shadow_mode",
            "native records its shadow decision in a filter state object a wasm filter cannot create",
        )?;
        refuse_true(
            raw.emit_client_span == Some(true),
            "emit_client_span",
            "Envoy gives a wasm filter's calls no client span (false, or unset, is what this filter does)",
        )?;
        if raw.include_peer_certificate {
            return Err(ConfigError::new(
                "include_peer_certificate",
                "is not supported: a wasm filter cannot read the peer certificate's PEM (the principal is sent)",
            ));
        }
        Ok(Self {
            include_tls_session: raw.include_tls_session,
            include_forwarded_source_address: raw.include_forwarded_source_address,
            mutations: MutationPolicy {
                validate: raw.validate_mutations,
                rules: raw
                    .decoder_header_mutation_rules
                    .map(|r| {
                        mutation_rules::header_mutation_rules("decoder_header_mutation_rules", r)
                    })
                    .transpose()?,
            },
            dynamic_metadata_ingestion: raw.enable_dynamic_metadata_ingestion.unwrap_or(true),
            max_denied_response_body_bytes: raw.max_denied_response_body_bytes,
            metadata,
            headers,
            service: top.service,
            failure_mode,
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

pub(crate) fn grpc_service(
    field: &str,
    grpc: raw::RawGrpcService,
) -> Result<GrpcService, ConfigError> {
    let Some(envoy_grpc) = grpc.envoy_grpc else {
        return Err(ConfigError::new(
            format!("{field}.envoy_grpc"),
            "is required: a wasm filter calls its auth server through an Envoy cluster",
        ));
    };
    if envoy_grpc.cluster_name.is_empty() {
        return Err(ConfigError::new(
            format!("{field}.envoy_grpc.cluster_name"),
            "must not be empty",
        ));
    }
    let timeout = grpc.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0);
    if timeout.is_zero() {
        return Err(ConfigError::new(
            format!("{field}.timeout"),
            "must be greater than 0s",
        ));
    }
    // The host takes the timeout in whole milliseconds as a u32.
    if timeout < Duration::from_millis(1) || timeout.as_millis() > u128::from(u32::MAX) {
        return Err(ConfigError::new(
            format!("{field}.timeout"),
            "must be between 0.001s and 4294967.295s (the host counts whole milliseconds)",
        ));
    }
    let mut initial_metadata = Vec::with_capacity(grpc.initial_metadata.len());
    for (i, header) in grpc.initial_metadata.into_iter().enumerate() {
        let field = format!("{field}.initial_metadata[{i}]");
        if !is_header_name(header.key.as_bytes()) || header.key.starts_with(':') {
            return Err(ConfigError::new(
                format!("{field}.key"),
                format!("{:?} is not a valid gRPC metadata key", header.key),
            ));
        }
        if !is_header_value(header.value.as_bytes()) {
            return Err(ConfigError::new(
                format!("{field}.value"),
                "must not contain NUL, CR or LF",
            ));
        }
        initial_metadata.push((header.key.to_ascii_lowercase(), header.value));
    }
    let target = grpc_service_target(&envoy_grpc.cluster_name, &envoy_grpc.authority);
    Ok(GrpcService {
        cluster_name: envoy_grpc.cluster_name,
        authority: envoy_grpc.authority,
        timeout,
        initial_metadata,
        target,
    })
}

fn with_request_body(
    field: &str,
    body: raw::RawWithRequestBody,
) -> Result<WithRequestBody, ConfigError> {
    if body.max_request_bytes == 0 {
        return Err(ConfigError::new(
            format!("{field}.max_request_bytes"),
            "must be greater than 0",
        ));
    }
    Ok(WithRequestBody {
        max_request_bytes: body.max_request_bytes,
        allow_partial_message: body.allow_partial_message,
        pack_as_bytes: body.pack_as_bytes,
    })
}

fn context_extensions(
    field: &str,
    entries: BTreeMap<String, String>,
) -> Result<ContextExtensions, ConfigError> {
    if entries.keys().any(String::is_empty) {
        return Err(ConfigError::new(field, "keys must not be empty"));
    }
    Ok(ContextExtensions::new(entries))
}

/// One `routes` entry, its settings merged over the top level's.
fn route(field: &str, raw: route::RawRoute, top: &CheckSettings) -> Result<Route, ConfigError> {
    let matcher = route::route_match(&format!("{field}.match"), raw.route_match)?;
    let action = match (raw.disabled, raw.check_settings) {
        (true, Some(_)) => {
            return Err(ConfigError::new(
                field,
                "takes disabled or check_settings, not both",
            ))
        }
        (true, None) => RouteAction::Disabled,
        (false, None) => RouteAction::Check(Box::new(top.clone())),
        (false, Some(settings)) => {
            let field = format!("{field}.check_settings");
            let mut extensions = top.context_extensions.entries.clone();
            let own = context_extensions(
                &format!("{field}.context_extensions"),
                settings.context_extensions,
            )?;
            extensions.extend(own.entries);
            let body = match (
                settings.disable_request_body_buffering,
                settings.with_request_body,
            ) {
                (true, Some(_)) => {
                    return Err(ConfigError::new(
                        &field,
                        "takes disable_request_body_buffering or with_request_body, not both",
                    ))
                }
                (true, None) => None,
                (false, Some(body)) => Some(with_request_body(
                    &format!("{field}.with_request_body"),
                    body,
                )?),
                (false, None) => top.with_request_body,
            };
            let service = match (settings.grpc_service, settings.http_service) {
                (Some(grpc), None) => {
                    Service::Grpc(grpc_service(&format!("{field}.grpc_service"), grpc)?)
                }
                (None, Some(http)) => Service::Http(http_service::http_service(
                    &format!("{field}.http_service"),
                    http,
                )?),
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        format!("{field}.http_service"),
                        "cannot be set beside grpc_service",
                    ))
                }
                (None, None) => top.service.clone(),
            };
            RouteAction::Check(Box::new(CheckSettings {
                service,
                context_extensions: ContextExtensions::new(extensions),
                with_request_body: body,
            }))
        }
    };
    Ok(Route { matcher, action })
}

/// The JSON Schema of the plugin configuration, derived from the serde types that parse it
/// (`tools/ext-authz-config` finishes it and writes `schema/ext_authz.schema.json`).
#[cfg(feature = "schema")]
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(raw::RawConfig)
}

/// Serializes `GrpcService { envoy_grpc { cluster_name, authority } }`.
fn grpc_service_target(cluster_name: &str, authority: &str) -> Vec<u8> {
    let mut envoy_grpc = Vec::new();
    wire::bytes_field(&mut envoy_grpc, 1, cluster_name.as_bytes());
    wire::bytes_field(&mut envoy_grpc, 2, authority.as_bytes());
    let mut service = Vec::new();
    wire::bytes_field(&mut service, 1, &envoy_grpc);
    service
}

/// An HTTP header name: RFC 7230 token characters.
pub fn is_header_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.iter().enumerate().all(|(i, &b)| {
            (i == 0 && b == b':') || b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// An HTTP header value Envoy accepts (as `validate_mutations` checks one): no control byte but
/// tab, so no NUL, CR or LF, and no DEL. Bytes from 0x80 up (UTF-8) and spaces anywhere are fine.
pub fn is_header_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests;
