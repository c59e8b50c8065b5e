//! `steps`: several checks run one after another for a request, as Gloo chains its auth configs.
//!
//! A step is a `grpc_service` (with its own `context_extensions` and a `config` object handed to
//! the server), an `http_service`, or a `required_header` checked locally with no network hop.
//! The whole chain has one deadline: the top-level `timeout`, or the sum of the step timeouts.

use super::reader::message;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::duration::ProtoDuration;
use super::error::ConfigError;
use super::grpc_service::{grpc_service, GrpcService, RawGrpcService};
use super::http_service::{http_service, HttpService, RawHttpService};
use super::messages::is_header_name;
use crate::proto::structpb;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    #[serde(default, alias = "grpcService")]
    pub grpc_service: Option<RawGrpcService>,
    #[serde(default, alias = "httpService")]
    pub http_service: Option<RawHttpService>,
    #[serde(default, alias = "requiredHeader")]
    pub required_header: Option<RawRequiredHeader>,
    /// With grpc_service: merged over the request's context extensions; the step's key wins.
    #[serde(default, alias = "contextExtensions")]
    pub context_extensions: BTreeMap<String, String>,
    /// With grpc_service: sent to the server in
    /// `metadata_context.filter_metadata["solo.auth.passthrough.config"]`.
    #[serde(default)]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Gloo's RequiredHeader plugin: the header must be there, with one of the values if any are given.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRequiredHeader {
    pub name: String,
    #[serde(default, alias = "allowedValues")]
    pub allowed_values: Vec<String>,
}

/// A validated chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Steps {
    pub steps: Vec<Step>,
    /// For the whole chain, from its start.
    pub deadline: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Grpc(GrpcStep),
    Http(HttpService),
    RequiredHeader(RequiredHeader),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GrpcStep {
    pub service: GrpcService,
    pub context_extensions: BTreeMap<String, String>,
    /// The step's `config`, an encoded `google.protobuf.Struct`; empty when none.
    pub config: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredHeader {
    pub name: String,
    pub allowed_values: Vec<String>,
}

pub fn steps(raw: Vec<RawStep>, timeout: Option<ProtoDuration>) -> Result<Steps, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new("steps", "must name at least one step"));
    }
    let mut steps = Vec::with_capacity(raw.len());
    for (i, step) in raw.into_iter().enumerate() {
        steps.push(one_step(&format!("steps[{i}]"), step)?);
    }
    let deadline = match timeout {
        Some(ProtoDuration(timeout)) if timeout.is_zero() => {
            return Err(ConfigError::new("timeout", "must be greater than 0s"))
        }
        Some(ProtoDuration(timeout)) => timeout,
        None => steps
            .iter()
            .map(|s| match s {
                Step::Grpc(g) => g.service.timeout,
                Step::Http(h) => h.timeout,
                Step::RequiredHeader(_) => Duration::ZERO,
            })
            .sum(),
    };
    Ok(Steps { steps, deadline })
}

fn one_step(field: &str, raw: RawStep) -> Result<Step, ConfigError> {
    let kinds = usize::from(raw.grpc_service.is_some())
        + usize::from(raw.http_service.is_some())
        + usize::from(raw.required_header.is_some());
    if kinds != 1 {
        return Err(ConfigError::new(
            field,
            "takes exactly one of grpc_service, http_service and required_header",
        ));
    }
    let grpc_only =
        |name: &str| ConfigError::new(format!("{field}.{name}"), "goes with grpc_service only");
    if raw.grpc_service.is_none() && !raw.context_extensions.is_empty() {
        return Err(grpc_only("context_extensions"));
    }
    if raw.grpc_service.is_none() && raw.config.is_some() {
        return Err(grpc_only("config"));
    }
    if let Some(grpc) = raw.grpc_service {
        if raw.context_extensions.keys().any(String::is_empty) {
            return Err(ConfigError::new(
                format!("{field}.context_extensions"),
                "keys must not be empty",
            ));
        }
        return Ok(Step::Grpc(GrpcStep {
            service: grpc_service(&format!("{field}.grpc_service"), grpc)?,
            context_extensions: raw.context_extensions,
            config: raw
                .config
                .as_ref()
                .map(structpb::encode_struct)
                .unwrap_or_default(),
        }));
    }
    if let Some(http) = raw.http_service {
        return Ok(Step::Http(http_service(
            &format!("{field}.http_service"),
            http,
        )?));
    }
    let Some(required) = raw.required_header else {
        return Err(ConfigError::new(field, "names no check"));
    };
    if !is_header_name(required.name.as_bytes()) || required.name.starts_with(':') {
        return Err(ConfigError::new(
            format!("{field}.required_header.name"),
            format!("{:?} is not a header name", required.name),
        ));
    }
    Ok(Step::RequiredHeader(RequiredHeader {
        name: required.name.to_ascii_lowercase(),
        allowed_values: required.allowed_values,
    }))
}

message!(RawStep {
    "grpc_service" => grpc_service,
    "http_service" => http_service,
    "required_header" => required_header,
    "context_extensions" => context_extensions,
    "config" => config,
});

message!(RawRequiredHeader {
    "name" => name required,
    "allowed_values" => allowed_values,
});
