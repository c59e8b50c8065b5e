//! The top level's sections, each judged on its own so that `Config::validate` can report the
//! errors of every section at once: the service, the failure mode, the header limit, the headers
//! and metadata sent, the mutation rules and the routes.

use std::collections::BTreeMap;

use super::duration::ProtoDuration;
use super::grpc_service::{grpc_service, RawGrpcService};
use super::http_service::{http_service, RawHttpService};
use super::messages::{
    list_string_matcher, with_request_body, RawListStringMatcher, RawWithRequestBody,
};
use super::mutation_rules::{header_mutation_rules, RawHeaderMutationRules};
use super::raw::{RawHttpStatus, RawMetadata};
use super::route::{route, RawRoute};
use super::settings::context_extensions;
use super::steps::RawStep;
use super::{
    steps, CheckSettings, ConfigError, ConfigErrors, FailureMode, HeaderSelection,
    MetadataSelection, Route, Service, DEFAULT_MAX_REQUEST_HEADERS_KB, DEFAULT_STATUS_ON_ERROR,
};
use crate::mutation_rules::MutationPolicy;

/// `grpc_service`, `http_service` or `steps` (with its `timeout`): exactly one.
pub(super) fn service(
    grpc: Option<RawGrpcService>,
    http: Option<RawHttpService>,
    chain: Option<Vec<RawStep>>,
    timeout: Option<ProtoDuration>,
) -> Result<Service, ConfigError> {
    if timeout.is_some() && chain.is_none() {
        return Err(ConfigError::new(
            "timeout",
            "is the deadline of steps; a single service takes its own timeout",
        ));
    }
    let conflict = if chain.is_some() {
        "steps"
    } else {
        "http_service"
    };
    match (grpc, http, chain) {
        (Some(grpc), None, None) => Ok(Service::Grpc(grpc_service("grpc_service", grpc)?)),
        (None, Some(http), None) => Ok(Service::Http(http_service("http_service", http)?)),
        (None, None, Some(chain)) => Ok(Service::Steps(steps::steps(chain, timeout)?)),
        (None, None, None) => Err(ConfigError::new(
            "grpc_service",
            "is required (or http_service, or steps): name the auth server's cluster",
        )),
        (_, Some(_), _) | (_, _, Some(_)) => Err(ConfigError::new(
            conflict,
            "takes the place of the others: name one of grpc_service, http_service and steps",
        )),
    }
}

/// `status_on_error`, judged even when failing open, as it always was.
pub(super) fn status_on_error(status: Option<&RawHttpStatus>) -> Result<u16, ConfigError> {
    match status {
        None => Ok(DEFAULT_STATUS_ON_ERROR),
        Some(status) => match u16::try_from(status.code) {
            Ok(code @ 200..=599) => Ok(code),
            _ => Err(ConfigError::new(
                "status_on_error.code",
                format!("{} is not an HTTP status between 200 and 599", status.code),
            )),
        },
    }
}

/// `failure_mode_allow` and `failure_mode_allow_header_add`, over `status_on_error`.
pub(super) fn failure_mode(
    status_on_error: u16,
    allow: bool,
    add_header: bool,
) -> Result<FailureMode, ConfigError> {
    Ok(if allow {
        FailureMode::Allow { add_header }
    } else {
        FailureMode::Deny { status_on_error }
    })
}

/// `max_request_headers_kb`, in the range Envoy's connection manager takes, as bytes.
pub(super) fn max_request_headers_kb(kb: Option<u32>) -> Result<usize, ConfigError> {
    match kb.unwrap_or(DEFAULT_MAX_REQUEST_HEADERS_KB) {
        kb @ 1..=8192 => Ok(kb as usize * 1024),
        kb => Err(ConfigError::new(
            "max_request_headers_kb",
            format!("{kb} is not between 1 and 8192, the range of the connection manager's"),
        )),
    }
}

/// Only "V3" exists; anything else is a config for another Envoy.
pub(super) fn transport_api_version(version: Option<String>) -> Result<(), ConfigError> {
    match version {
        Some(version) if version != "V3" => Err(ConfigError::new(
            "transport_api_version",
            format!("{version:?} is not supported: only \"V3\" exists"),
        )),
        _ => Ok(()),
    }
}

/// The top level's check settings: its service, `context_extensions` and `with_request_body`.
pub(super) fn top_settings(
    service: Service,
    extensions: BTreeMap<String, String>,
    body: Option<RawWithRequestBody>,
) -> Result<CheckSettings, ConfigError> {
    Ok(CheckSettings {
        service,
        context_extensions: context_extensions("context_extensions", extensions)?,
        with_request_body: body
            .map(|body| with_request_body("with_request_body", body))
            .transpose()?,
    })
}

/// `routes`, each merged over the top level's settings; every route's error.
pub(super) fn routes(raw: Vec<RawRoute>, top: &CheckSettings) -> Result<Vec<Route>, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let routes: Vec<Route> = raw
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| errors.take(route(&format!("routes[{i}]"), r, top)))
        .collect();
    if errors.is_empty() {
        Ok(routes)
    } else {
        Err(errors)
    }
}

/// `allowed_headers`, `disallowed_headers` and `encode_raw_headers`.
pub(super) fn headers(
    allowed: Option<RawListStringMatcher>,
    disallowed: Option<RawListStringMatcher>,
    raw: bool,
) -> Result<HeaderSelection, ConfigError> {
    Ok(HeaderSelection {
        allowed: list_string_matcher("allowed_headers", allowed)?,
        disallowed: list_string_matcher("disallowed_headers", disallowed)?.unwrap_or_default(),
        raw,
    })
}

/// The namespaces as given, with `metadata_context` encoded once into them.
pub(super) fn metadata(
    mut selection: MetadataSelection,
    fixed: Option<RawMetadata>,
) -> Result<MetadataSelection, ConfigError> {
    selection.fixed = fixed
        .map(|m| {
            m.filter_metadata
                .iter()
                .map(|(ns, object)| (ns.clone(), crate::proto::structpb::encode_struct(object)))
                .collect()
        })
        .unwrap_or_default();
    if let Some(at) = selection.fixed.iter().position(|(ns, _)| ns.is_empty()) {
        return Err(ConfigError::new(
            format!("metadata_context.filter_metadata[{at}]"),
            "a namespace must not be empty",
        ));
    }
    Ok(selection)
}

/// `validate_mutations` and `decoder_header_mutation_rules`.
pub(super) fn mutations(
    validate: bool,
    rules: Option<RawHeaderMutationRules>,
) -> Result<MutationPolicy, ConfigError> {
    Ok(MutationPolicy {
        validate,
        rules: rules
            .map(|r| header_mutation_rules("decoder_header_mutation_rules", r))
            .transpose()?,
    })
}
