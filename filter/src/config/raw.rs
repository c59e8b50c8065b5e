//! The configuration as written: raw types that mirror the native ExtAuthz JSON, before validation,
//! read by `config::reader` through the field tables beside them. Their serde derives are the JSON
//! Schema's source only (the module never calls them).
//!
//! Snake_case names as Envoy's docs write them; lowerCamelCase accepted too, as protobuf JSON does.
//! Native fields this filter does not honour are refused with the reason, never ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::decision_cache::RawDecisionCache;
use super::duration::ProtoDuration;
use serde_json::Value;

use super::error::{ConfigError, ConfigErrors};
use super::every_error::Removals;
use super::filter_enabled::{RawRuntimeFeatureFlag, RawRuntimeFractionalPercent};
use super::grpc_service::RawGrpcService;
use super::http_service::RawHttpService;
use super::json_path::Segment;
use super::messages::{RawListStringMatcher, RawWithRequestBody};
use super::mutation_rules::RawHeaderMutationRules;
use super::reader::{message, Reader};
use super::refused;
use super::route::RawRoute;
use super::steps::RawStep;

/// The plugin configuration: a subset of Envoy's native ExtAuthz filter config, same field names.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("oneOf" = [{"required": ["grpc_service"]}, {"required": ["http_service"]}, {"required": ["steps"]}]))
)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The authorization server: an Envoy cluster speaking envoy.service.auth.v3 gRPC.
    /// Exactly one of grpc_service and http_service.
    #[serde(default, alias = "grpcService")]
    #[cfg_attr(feature = "schema", schemars(required))]
    pub grpc_service: Option<RawGrpcService>,
    /// Let the request through when the check fails (error, timeout, unreachable server)
    /// instead of answering with `status_on_error`. Default false: fail closed.
    #[serde(default, alias = "failureModeAllow")]
    pub failure_mode_allow: bool,
    /// With failure_mode_allow, add `x-envoy-auth-failure-mode-allowed: true` to a request let
    /// through after a failed check.
    #[serde(default, alias = "failureModeAllowHeaderAdd")]
    pub failure_mode_allow_header_add: bool,
    /// The status sent to the client when the check fails and failure_mode_allow is false.
    /// Default 403.
    #[serde(default, alias = "statusOnError")]
    pub status_on_error: Option<RawHttpStatus>,
    /// Sent in every CheckRequest as `attributes.context_extensions`.
    #[serde(default, alias = "contextExtensions")]
    #[cfg_attr(
        feature = "schema",
        schemars(extend("propertyNames" = {"minLength": 1}))
    )]
    pub context_extensions: BTreeMap<String, String>,
    /// Buffer the request body and send it to the auth server. Needs
    /// `allow_on_headers_stop_iteration: true` in the Wasm PluginConfig (see the README).
    #[serde(default, alias = "withRequestBody")]
    pub with_request_body: Option<RawWithRequestBody>,
    /// A plain HTTP authorization server instead of a gRPC one (see `config::http_service`).
    #[serde(default, alias = "httpService")]
    pub http_service: Option<RawHttpService>,
    /// Several checks in a row instead of one service (see `config::steps`).
    #[serde(default)]
    pub steps: Option<Vec<RawStep>>,
    /// The deadline of all `steps` together; default the sum of their timeouts.
    #[serde(default)]
    pub timeout: Option<ProtoDuration>,
    /// Which request headers go into the CheckRequest; unset, all of them.
    #[serde(default, alias = "allowedHeaders")]
    pub allowed_headers: Option<RawListStringMatcher>,
    /// Request headers kept out of the CheckRequest; this wins over allowed_headers.
    #[serde(default, alias = "disallowedHeaders")]
    pub disallowed_headers: Option<RawListStringMatcher>,
    /// Send `header_map` (every value apart, bytes as they are) instead of `headers`.
    #[serde(default, alias = "encodeRawHeaders")]
    pub encode_raw_headers: bool,
    /// Namespaces of the stream's dynamic metadata sent in `metadata_context`.
    #[serde(default, alias = "metadataContextNamespaces")]
    pub metadata_context_namespaces: Vec<String>,
    /// Namespaces of the route's metadata sent in `route_metadata_context`.
    #[serde(default, alias = "routeMetadataContextNamespaces")]
    pub route_metadata_context_namespaces: Vec<String>,
    /// Namespaces of the stream's typed dynamic metadata sent in `metadata_context`.
    #[serde(default, alias = "typedMetadataContextNamespaces")]
    pub typed_metadata_context_namespaces: Vec<String>,
    /// Namespaces of the route's typed metadata sent in `route_metadata_context`.
    #[serde(default, alias = "routeTypedMetadataContextNamespaces")]
    pub route_typed_metadata_context_namespaces: Vec<String>,
    /// This filter's own: metadata sent in every CheckRequest's `metadata_context`, as Gloo's
    /// passthrough hands per-config settings to the server (`solo.auth.passthrough.config`).
    #[serde(default, alias = "metadataContext")]
    pub metadata_context: Option<RawMetadata>,
    /// Send the TLS session (its SNI) in `attributes.tls_session`.
    #[serde(default, alias = "includeTlsSession")]
    pub include_tls_session: bool,
    /// This filter's own. Send as `source.address` the client address Envoy took from
    /// `x-forwarded-for` (or an original IP detection extension). Default false: such an address
    /// is left out, because under `use_remote_address: false` the client writes it; native sends
    /// the TCP peer, which a wasm filter cannot read.
    #[serde(default, alias = "includeForwardedSourceAddress")]
    pub include_forwarded_source_address: bool,
    /// Refuse (500) an answer whose header or query changes are not valid HTTP.
    #[serde(default, alias = "validateMutations")]
    pub validate_mutations: bool,
    /// Which request header changes the server may make (native's HeaderMutationRules).
    #[serde(default, alias = "decoderHeaderMutationRules")]
    pub decoder_header_mutation_rules: Option<RawHeaderMutationRules>,
    /// Hand the server's `dynamic_metadata` on (as filter state). Default true.
    #[serde(default, alias = "enableDynamicMetadataIngestion")]
    pub enable_dynamic_metadata_ingestion: Option<bool>,
    /// Only `true` (or unset) is accepted: Envoy picks the route again after every request header
    /// change a wasm filter makes.
    #[serde(default, alias = "clearRouteCache")]
    pub clear_route_cache: Option<bool>,
    /// The most bytes of a denial's body sent to the client; 0, all of it.
    #[serde(default, alias = "maxDeniedResponseBodyBytes")]
    pub max_denied_response_body_bytes: u32,
    /// Only `false` is accepted: a wasm filter cannot read the connection manager's limits.
    #[serde(default, alias = "enforceResponseHeaderLimits")]
    pub enforce_response_header_limits: bool,
    /// Count and record each decision (filter state `wasm.ext_authz.shadow_decision`) but never
    /// enforce a denial or a failure: the request always goes on.
    #[serde(default, alias = "shadowMode")]
    pub shadow_mode: bool,
    /// Only `false` (or unset) is accepted: the host's calls carry no client span.
    #[serde(default, alias = "emitClientSpan")]
    pub emit_client_span: Option<bool>,
    /// Only `false` is accepted: a wasm filter cannot read the peer certificate's PEM.
    #[serde(default, alias = "includePeerCertificate")]
    pub include_peer_certificate: bool,
    /// This filter's own. Hand the request's W3C (`traceparent`, `tracestate`) and B3 trace
    /// context to the auth server as a child span's (gRPC metadata, HTTP headers), so the
    /// server's spans join the request's trace. Default true; native does so only with a
    /// tracer configured in the connection manager.
    #[serde(default, alias = "propagateTraceContext")]
    pub propagate_trace_context: Option<bool>,
    /// This filter's own: a cache of the auth server's answers shared by every worker (see
    /// `config::decision_cache`).
    #[serde(default, alias = "decisionCache")]
    pub decision_cache: Option<RawDecisionCache>,
    /// The share of requests checked, sampled per request; unset, all of them. The runtime key is
    /// not read: `default_value` applies.
    #[serde(default, alias = "filterEnabled")]
    pub filter_enabled: Option<RawRuntimeFractionalPercent>,
    /// A request `filter_enabled` leaves unchecked gets `status_on_error` instead of going on.
    /// The runtime key is not read: `default_value` applies.
    #[serde(default, alias = "denyAtDisable")]
    pub deny_at_disable: Option<RawRuntimeFeatureFlag>,
    /// This filter's own: the connection manager's `max_request_headers_kb` (default 60, as
    /// Envoy's), which a wasm filter cannot read. A request the server's changes push past it gets
    /// 500, as native answers it.
    #[serde(default, alias = "maxRequestHeadersKb")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 8192)))]
    pub max_request_headers_kb: Option<u32>,
    /// Per-route settings: the first entry whose `match` fits applies (see `config::route`).
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Counters are named `ext_authz.<stat_prefix>.<name>`.
    #[serde(default, alias = "statPrefix")]
    pub stat_prefix: String,
    /// Only "V3" exists; accepted so that native configs move over unchanged.
    #[serde(default, alias = "transportApiVersion")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["V3", null])))]
    pub transport_api_version: Option<String>,
}

/// Native `envoy.type.v3.HttpStatus`, by number.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHttpStatus {
    /// An HTTP status between 200 and 599.
    #[cfg_attr(feature = "schema", schemars(range(min = 200, max = 599)))]
    pub code: i64,
}

/// `envoy.config.core.v3.Metadata` as JSON: namespaces, each a JSON object (a Struct).
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawMetadata {
    #[serde(default, alias = "filterMetadata")]
    pub filter_metadata: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

impl RawConfig {
    /// Reads the JSON: the native fields refused outright, then every error of the rest (see
    /// `config::reader`), each naming its field by its path. `None` when nothing could be
    /// read; else what was read once the refused fields were taken out.
    pub(super) fn read(
        json: &[u8],
        removals: &mut Removals,
        errors: &mut ConfigErrors,
    ) -> Option<Self> {
        // Envoy hands an absent `configuration` over as empty bytes.
        if json.iter().all(u8::is_ascii_whitespace) {
            errors.push(ConfigError::new(
                "",
                "the plugin configuration is empty: grpc_service is required",
            ));
            return None;
        }
        let mut value: Value = match serde_json::from_slice(json) {
            Ok(value) => value,
            Err(e) => {
                errors.push(ConfigError::new("", format!("is not JSON: {e}")));
                return None;
            }
        };
        let Value::Object(top) = &value else {
            errors.push(ConfigError::new("", "must be a JSON object"));
            return None;
        };
        let mut refused: Vec<(Vec<Segment>, ConfigError)> =
            refused::refused_fields(top, "", refused::EXT_AUTHZ)
                .into_iter()
                .map(|(key, error)| (vec![Segment::Key(key)], error))
                .collect();
        if let Some((name, Value::Object(grpc))) = ["grpc_service", "grpcService"]
            .into_iter()
            .find_map(|name| top.get(name).map(|grpc| (name, grpc)))
        {
            let within = refused::refused_fields(grpc, "grpc_service.", refused::GRPC_SERVICE);
            refused.extend(
                within.into_iter().map(|(key, error)| {
                    (vec![Segment::Key(name.into()), Segment::Key(key)], error)
                }),
            );
        }
        for (path, error) in refused {
            errors.push(error);
            removals.take_out(&mut value, &path);
        }
        Reader::new(removals, errors).read(&value)
    }
}

message!(RawConfig {
    "grpc_service" => grpc_service,
    "failure_mode_allow" => failure_mode_allow,
    "failure_mode_allow_header_add" => failure_mode_allow_header_add,
    "status_on_error" => status_on_error,
    "context_extensions" => context_extensions,
    "with_request_body" => with_request_body,
    "http_service" => http_service,
    "steps" => steps,
    "timeout" => timeout,
    "allowed_headers" => allowed_headers,
    "disallowed_headers" => disallowed_headers,
    "encode_raw_headers" => encode_raw_headers,
    "metadata_context_namespaces" => metadata_context_namespaces,
    "route_metadata_context_namespaces" => route_metadata_context_namespaces,
    "typed_metadata_context_namespaces" => typed_metadata_context_namespaces,
    "route_typed_metadata_context_namespaces" => route_typed_metadata_context_namespaces,
    "metadata_context" => metadata_context,
    "include_tls_session" => include_tls_session,
    "include_forwarded_source_address" => include_forwarded_source_address,
    "validate_mutations" => validate_mutations,
    "decoder_header_mutation_rules" => decoder_header_mutation_rules,
    "enable_dynamic_metadata_ingestion" => enable_dynamic_metadata_ingestion,
    "clear_route_cache" => clear_route_cache,
    "max_denied_response_body_bytes" => max_denied_response_body_bytes,
    "enforce_response_header_limits" => enforce_response_header_limits,
    "shadow_mode" => shadow_mode,
    "emit_client_span" => emit_client_span,
    "include_peer_certificate" => include_peer_certificate,
    "propagate_trace_context" => propagate_trace_context,
    "decision_cache" => decision_cache,
    "filter_enabled" => filter_enabled,
    "deny_at_disable" => deny_at_disable,
    "max_request_headers_kb" => max_request_headers_kb,
    "routes" => routes,
    "stat_prefix" => stat_prefix,
    "transport_api_version" => transport_api_version,
});

message!(RawHttpStatus {
    "code" => code required,
});

message!(RawMetadata {
    "filter_metadata" => filter_metadata,
});
