//! The configuration as written: serde types that mirror the native ExtAuthz JSON, before validation.
//!
//! Snake_case names as Envoy's docs write them; lowerCamelCase accepted too, as protobuf JSON does.
//! Native fields this filter does not honour are refused with the reason, never ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::duration::ProtoDuration;
use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default, alias = "grpcService")]
    pub grpc_service: Option<RawGrpcService>,
    #[serde(default, alias = "failureModeAllow")]
    pub failure_mode_allow: bool,
    #[serde(default, alias = "failureModeAllowHeaderAdd")]
    pub failure_mode_allow_header_add: bool,
    #[serde(default, alias = "statusOnError")]
    pub status_on_error: Option<RawHttpStatus>,
    #[serde(default, alias = "contextExtensions")]
    pub context_extensions: BTreeMap<String, String>,
    #[serde(default, alias = "statPrefix")]
    pub stat_prefix: String,
    #[serde(default, alias = "transportApiVersion")]
    pub transport_api_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrpcService {
    #[serde(default, alias = "envoyGrpc")]
    pub envoy_grpc: Option<RawEnvoyGrpc>,
    #[serde(default)]
    pub timeout: Option<ProtoDuration>,
    #[serde(default, alias = "initialMetadata")]
    pub initial_metadata: Vec<RawHeaderValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvoyGrpc {
    #[serde(alias = "clusterName")]
    pub cluster_name: String,
    #[serde(default)]
    pub authority: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderValue {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpStatus {
    pub code: i64,
}

/// Native ExtAuthz fields that this filter refuses, and why. Keys in snake_case.
const REFUSED_FIELDS: &[(&str, &str)] = &[
    ("http_service", "is not supported yet: use grpc_service"),
    (
        "with_request_body",
        "is not supported yet: the body is not sent to the auth server",
    ),
    (
        "clear_route_cache",
        "is not supported: a wasm filter cannot clear the route cache",
    ),
    (
        "allowed_headers",
        "is not supported yet: every request header is sent",
    ),
    (
        "disallowed_headers",
        "is not supported yet: every request header is sent",
    ),
    (
        "encode_raw_headers",
        "is not supported yet: headers are sent as the joined `headers` map",
    ),
    ("include_peer_certificate", "is not supported yet"),
    ("include_tls_session", "is not supported yet"),
    ("metadata_context_namespaces", "is not supported yet"),
    ("typed_metadata_context_namespaces", "is not supported yet"),
    ("route_metadata_context_namespaces", "is not supported yet"),
    (
        "route_typed_metadata_context_namespaces",
        "is not supported yet",
    ),
    (
        "validate_mutations",
        "is not supported yet: mutations with CR, LF or NUL are always refused",
    ),
    ("decoder_header_mutation_rules", "is not supported yet"),
    ("filter_metadata", "is not supported yet"),
    ("enable_dynamic_metadata_ingestion", "is not supported yet"),
    ("emit_filter_state_stats", "is not supported yet"),
    (
        "filter_enabled",
        "is not supported: a wasm filter cannot read runtime fractions",
    ),
    (
        "filter_enabled_metadata",
        "is not supported: a wasm filter cannot match dynamic metadata",
    ),
    (
        "deny_at_disable",
        "is not supported: a wasm filter cannot read runtime flags",
    ),
    (
        "bootstrap_metadata_labels_key",
        "is not supported: a wasm filter cannot read bootstrap labels",
    ),
    (
        "charge_cluster_response_stats",
        "is not supported: a wasm filter cannot charge cluster stats",
    ),
];

/// Native GrpcService fields this filter refuses, and why.
const REFUSED_GRPC_SERVICE_FIELDS: &[(&str, &str)] = &[
    (
        "google_grpc",
        "is not supported: a wasm filter calls out through Envoy; use envoy_grpc",
    ),
    (
        "retry_policy",
        "is not supported: the host's gRPC call has no retries",
    ),
];

impl RawConfig {
    /// Parses the JSON, naming the field of any error by its path.
    pub fn parse(json: &[u8]) -> Result<Self, ConfigError> {
        // Envoy hands an absent `configuration` over as empty bytes.
        if json.iter().all(u8::is_ascii_whitespace) {
            return Err(ConfigError::new(
                "",
                "the plugin configuration is empty: grpc_service is required",
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| ConfigError::new("", format!("is not JSON: {e}")))?;
        let serde_json::Value::Object(top) = &value else {
            return Err(ConfigError::new("", "must be a JSON object"));
        };
        refuse_known(top, "", REFUSED_FIELDS)?;
        if let Some(serde_json::Value::Object(grpc)) =
            top.get("grpc_service").or_else(|| top.get("grpcService"))
        {
            refuse_known(grpc, "grpc_service.", REFUSED_GRPC_SERVICE_FIELDS)?;
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            ConfigError::new(field, e.into_inner().to_string())
        })
    }
}

fn refuse_known(
    object: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    refused: &[(&str, &str)],
) -> Result<(), ConfigError> {
    for key in object.keys() {
        let snake = to_snake_case(key);
        if let Some((name, reason)) = refused.iter().find(|(name, _)| *name == snake) {
            return Err(ConfigError::new(format!("{prefix}{name}"), *reason));
        }
    }
    Ok(())
}

fn to_snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
