//! nanoserde derives (DeJson): no aliases (snake_case only), errors give line and column.
use nanoserde::DeJson;

use crate::{duration_ms, Config};

#[derive(DeJson)]
struct RawConfig {
    grpc_service: Option<RawGrpcService>,
    failure_mode_allow: Option<bool>,
    status_on_error: Option<RawHttpStatus>,
    with_request_body: Option<RawWithRequestBody>,
    allowed_headers: Option<RawListStringMatcher>,
    stat_prefix: Option<String>,
    include_tls_session: Option<bool>,
    max_denied_response_body_bytes: Option<u32>,
    metadata_context_namespaces: Option<Vec<String>>,
    transport_api_version: Option<String>,
}

#[derive(DeJson)]
struct RawGrpcService {
    envoy_grpc: Option<RawEnvoyGrpc>,
    timeout: Option<String>,
}

#[derive(DeJson)]
struct RawEnvoyGrpc {
    cluster_name: String,
    authority: Option<String>,
}

#[derive(DeJson)]
struct RawHttpStatus {
    code: i64,
}

#[derive(DeJson)]
struct RawWithRequestBody {
    max_request_bytes: u32,
    allow_partial_message: Option<bool>,
    pack_as_bytes: Option<bool>,
}

#[derive(DeJson)]
struct RawListStringMatcher {
    patterns: Vec<RawStringMatcher>,
}

#[derive(DeJson)]
struct RawStringMatcher {
    exact: Option<String>,
    prefix: Option<String>,
    suffix: Option<String>,
    contains: Option<String>,
    ignore_case: Option<bool>,
}

pub fn read(json: &[u8]) -> Result<Config, String> {
    let text = core::str::from_utf8(json).map_err(|_| String::from("not UTF-8"))?;
    let raw = RawConfig::deserialize_json(text).map_err(|e| e.to_string())?;
    let grpc = raw.grpc_service.ok_or("grpc_service is required")?;
    let envoy = grpc
        .envoy_grpc
        .ok_or("grpc_service.envoy_grpc is required")?;
    let mut c = Config {
        cluster_name: envoy.cluster_name,
        authority: envoy.authority.unwrap_or_default(),
        timeout_ms: grpc
            .timeout
            .as_deref()
            .map(duration_ms)
            .transpose()?
            .unwrap_or(200),
        failure_mode_allow: raw.failure_mode_allow.unwrap_or(false),
        status_on_error: raw.status_on_error.map_or(403, |s| s.code),
        stat_prefix: raw.stat_prefix.unwrap_or_default(),
        include_tls_session: raw.include_tls_session.unwrap_or(false),
        max_denied_response_body_bytes: raw.max_denied_response_body_bytes.unwrap_or(0),
        namespaces: raw.metadata_context_namespaces.unwrap_or_default(),
        transport_api_version: raw.transport_api_version,
        ..Config::default()
    };
    if let Some(b) = raw.with_request_body {
        c.max_request_bytes = b.max_request_bytes;
        c.allow_partial_message = b.allow_partial_message.unwrap_or(false);
        c.pack_as_bytes = b.pack_as_bytes.unwrap_or(false);
    }
    for p in raw.allowed_headers.map(|l| l.patterns).unwrap_or_default() {
        let (kind, s) = match (p.exact, p.prefix, p.suffix, p.contains) {
            (Some(s), None, None, None) => (0, s),
            (None, Some(s), None, None) => (1, s),
            (None, None, Some(s), None) => (2, s),
            (None, None, None, Some(s)) => (3, s),
            _ => {
                return Err(
                    "allowed_headers: exactly one of exact, prefix, suffix, contains".into(),
                )
            }
        };
        c.allowed.push((kind, s, p.ignore_case.unwrap_or(false)));
    }
    Ok(c)
}
