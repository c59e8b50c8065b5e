//! `grpc_service`: the gRPC authorization server, as written (native `GrpcService` with
//! `envoy_grpc` only) and validated, with the serialized target `dispatch_grpc_call` takes.

use super::reader::message;
use std::time::Duration;

use serde::Deserialize;

use super::duration::ProtoDuration;
use super::error::ConfigError;
use super::messages::{header_values, RawHeaderValue};
use super::retry::{retry_policy, RawRetryPolicy, RetryPolicy};
use crate::proto::wire;

/// The default `grpc_service.timeout`, as native: 200 ms.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
/// Native `envoy.config.core.v3.GrpcService`, with `envoy_grpc` only.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("required" = ["envoy_grpc"])))]
#[serde(deny_unknown_fields)]
pub struct RawGrpcService {
    /// The Envoy cluster of the authorization server.
    #[serde(default, alias = "envoyGrpc")]
    #[cfg_attr(feature = "schema", schemars(required))]
    pub envoy_grpc: Option<RawEnvoyGrpc>,
    /// The deadline of one Check call, as protobuf JSON writes durations ("0.25s"). Default 0.2s;
    /// between 0.001s and 4294967.295s.
    #[serde(default)]
    pub timeout: Option<ProtoDuration>,
    /// gRPC metadata sent with every Check call.
    #[serde(default, alias = "initialMetadata")]
    pub initial_metadata: Vec<RawHeaderValue>,
    /// Retries of a failed Check call, made by Envoy's gRPC client as for native ext_authz.
    #[serde(default, alias = "retryPolicy")]
    pub retry_policy: Option<RawRetryPolicy>,
}

/// Native `GrpcService.EnvoyGrpc`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawEnvoyGrpc {
    /// The cluster's name, such as `ext_authz` or, in Istio, `outbound|9001||authz.ns.svc.cluster.local`.
    #[serde(alias = "clusterName")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub cluster_name: String,
    /// The `:authority` of the gRPC call; default the cluster name. Set it for Istio cluster names.
    #[serde(default)]
    pub authority: String,
}

/// Where the CheckRequest goes and how.
#[derive(Debug, Clone, PartialEq)]
pub struct GrpcService {
    pub cluster_name: String,
    pub authority: String,
    pub timeout: Duration,
    /// Sent as gRPC metadata on every call; keys lower-case.
    pub initial_metadata: Vec<(String, String)>,
    pub retry_policy: Option<RetryPolicy>,
    /// `envoy.config.core.v3.GrpcService` serialized, the form `dispatch_grpc_call` takes so that
    /// `authority` and Istio cluster names such as `outbound|9000||authz.ns.svc.cluster.local` work.
    pub target: Vec<u8>,
}

pub(crate) fn grpc_service(field: &str, grpc: RawGrpcService) -> Result<GrpcService, ConfigError> {
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
    let initial_metadata = header_values(
        &format!("{field}.initial_metadata"),
        grpc.initial_metadata,
        "is not a valid gRPC metadata key",
    )?;
    let retry_policy = grpc
        .retry_policy
        .map(|raw| retry_policy(&format!("{field}.retry_policy"), raw))
        .transpose()?;
    let target = grpc_service_target(
        &envoy_grpc.cluster_name,
        &envoy_grpc.authority,
        retry_policy.as_ref(),
    );
    Ok(GrpcService {
        cluster_name: envoy_grpc.cluster_name,
        authority: envoy_grpc.authority,
        timeout,
        initial_metadata,
        retry_policy,
        target,
    })
}

/// Serializes `GrpcService { envoy_grpc { cluster_name, authority }, retry_policy }`. The
/// timeout and metadata go with each call instead.
fn grpc_service_target(
    cluster_name: &str,
    authority: &str,
    retry_policy: Option<&RetryPolicy>,
) -> Vec<u8> {
    let mut envoy_grpc = Vec::new();
    wire::bytes_field(&mut envoy_grpc, 1, cluster_name.as_bytes());
    wire::bytes_field(&mut envoy_grpc, 2, authority.as_bytes());
    let mut service = Vec::new();
    wire::bytes_field(&mut service, 1, &envoy_grpc);
    if let Some(policy) = retry_policy {
        // `GrpcService.retry_policy`: the client's default for every call it makes.
        wire::message_field(&mut service, 6, |buf| policy.encode(buf));
    }
    service
}

message!(RawGrpcService {
    "envoy_grpc" => envoy_grpc,
    "timeout" => timeout,
    "initial_metadata" => initial_metadata,
    "retry_policy" => retry_policy,
});

message!(RawEnvoyGrpc {
    "cluster_name" => cluster_name required,
    "authority" => authority,
});
