//! Today's way: serde derives with aliases and deny_unknown_fields, serde_json::from_slice.
use serde::Deserialize;

use crate::{duration_ms, Config};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default, alias = "grpcService")]
    grpc_service: Option<RawGrpcService>,
    #[serde(default, alias = "failureModeAllow")]
    failure_mode_allow: bool,
    #[serde(default, alias = "statusOnError")]
    status_on_error: Option<RawHttpStatus>,
    #[serde(default, alias = "withRequestBody")]
    with_request_body: Option<RawWithRequestBody>,
    #[serde(default, alias = "allowedHeaders")]
    allowed_headers: Option<RawListStringMatcher>,
    #[serde(default, alias = "statPrefix")]
    stat_prefix: String,
    #[serde(default, alias = "includeTlsSession")]
    include_tls_session: bool,
    #[serde(default, alias = "maxDeniedResponseBodyBytes")]
    max_denied_response_body_bytes: u32,
    #[serde(default, alias = "metadataContextNamespaces")]
    metadata_context_namespaces: Vec<String>,
    #[serde(default, alias = "transportApiVersion")]
    transport_api_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrpcService {
    #[serde(default, alias = "envoyGrpc")]
    envoy_grpc: Option<RawEnvoyGrpc>,
    #[serde(default)]
    timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvoyGrpc {
    #[serde(alias = "clusterName")]
    cluster_name: String,
    #[serde(default)]
    authority: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpStatus {
    code: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWithRequestBody {
    #[serde(alias = "maxRequestBytes")]
    max_request_bytes: u32,
    #[serde(default, alias = "allowPartialMessage")]
    allow_partial_message: bool,
    #[serde(default, alias = "packAsBytes")]
    pack_as_bytes: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListStringMatcher {
    patterns: Vec<RawStringMatcher>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStringMatcher {
    exact: Option<String>,
    prefix: Option<String>,
    suffix: Option<String>,
    contains: Option<String>,
    #[serde(default, alias = "ignoreCase")]
    ignore_case: bool,
}

pub fn read(json: &[u8]) -> Result<Config, String> {
    #[cfg(feature = "current")]
    let canonical = {
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        serde_json::to_vec(&value).map_err(|e| e.to_string())?
    };
    #[cfg(feature = "current")]
    let json = &canonical[..];
    let raw: RawConfig = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let grpc = raw.grpc_service.ok_or("grpc_service is required")?;
    let envoy = grpc
        .envoy_grpc
        .ok_or("grpc_service.envoy_grpc is required")?;
    let mut c = Config {
        cluster_name: envoy.cluster_name,
        authority: envoy.authority,
        timeout_ms: grpc
            .timeout
            .as_deref()
            .map(duration_ms)
            .transpose()?
            .unwrap_or(200),
        failure_mode_allow: raw.failure_mode_allow,
        status_on_error: raw.status_on_error.map_or(403, |s| s.code),
        stat_prefix: raw.stat_prefix,
        include_tls_session: raw.include_tls_session,
        max_denied_response_body_bytes: raw.max_denied_response_body_bytes,
        namespaces: raw.metadata_context_namespaces,
        transport_api_version: raw.transport_api_version,
        ..Config::default()
    };
    if let Some(b) = raw.with_request_body {
        c.max_request_bytes = b.max_request_bytes;
        c.allow_partial_message = b.allow_partial_message;
        c.pack_as_bytes = b.pack_as_bytes;
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
        c.allowed.push((kind, s, p.ignore_case));
    }
    Ok(c)
}
