//! The native fields this filter does not honour, each with its reason: the one list of them.
//!
//! A field refused whatever its value is one the raw types do not have; the parser refuses its key
//! before serde sees the document, so the error carries the reason, not "unknown field". A field
//! of which one value is refused is one the raw types read; validation refuses that value.

use super::error::ConfigError;

/// What of a native field is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// The field itself, any value.
    Field,
    /// This value of it; the other is what the filter does.
    Value(bool),
}

/// A refused native field, by its snake_case name.
#[derive(Debug, Clone, Copy)]
pub(super) struct Refusal {
    pub name: &'static str,
    pub refused: Refused,
    pub reason: &'static str,
}

impl Refusal {
    /// Refuses a value this field does not take (unset is always fine).
    pub(super) fn check(&self, value: Option<bool>) -> Result<(), ConfigError> {
        match (self.refused, value) {
            (Refused::Value(refused), Some(value)) if refused == value => {
                Err(ConfigError::new(self.name, self.reason))
            }
            _ => Ok(()),
        }
    }
}

const fn field(name: &'static str, reason: &'static str) -> Refusal {
    Refusal {
        name,
        refused: Refused::Field,
        reason,
    }
}

const fn value(name: &'static str, refused: bool, reason: &'static str) -> Refusal {
    Refusal {
        name,
        refused: Refused::Value(refused),
        reason,
    }
}

pub(super) const CLEAR_ROUTE_CACHE: Refusal = value(
    "clear_route_cache",
    false,
    "false is not supported: Envoy picks the route again after every request header change a wasm filter makes, as native does with true",
);
pub(super) const ENFORCE_RESPONSE_HEADER_LIMITS: Refusal = value(
    "enforce_response_header_limits",
    true,
    "true is not supported: a wasm filter cannot read the connection manager's header limits",
);
pub(super) const EMIT_CLIENT_SPAN: Refusal = value(
    "emit_client_span",
    true,
    "true is not supported: Envoy gives a wasm filter's calls no client span (false, or unset, is what this filter does)",
);
pub(super) const INCLUDE_PEER_CERTIFICATE: Refusal = value(
    "include_peer_certificate",
    true,
    "is not supported: a wasm filter cannot read the peer certificate's PEM (the principal is sent)",
);

/// The native ExtAuthz fields refused, in the order validation judges the values.
pub(super) const EXT_AUTHZ: &[Refusal] = &[
    field(
        "filter_metadata",
        "is not supported: native hands it on only inside its ExtAuthzLoggingInfo filter state object, which a wasm filter cannot create (metadata for the server goes in metadata_context)",
    ),
    field(
        "emit_filter_state_stats",
        "is not supported: a wasm filter cannot create native's ExtAuthzLoggingInfo filter state object; check latencies are in the check_latency_ms histogram",
    ),
    field(
        "filter_enabled_metadata",
        "is not supported: a wasm filter cannot match dynamic metadata",
    ),
    field(
        "bootstrap_metadata_labels_key",
        "is not supported: a wasm filter cannot read bootstrap labels",
    ),
    field(
        "charge_cluster_response_stats",
        "is not supported: a wasm filter cannot charge cluster stats",
    ),
    CLEAR_ROUTE_CACHE,
    ENFORCE_RESPONSE_HEADER_LIMITS,
    EMIT_CLIENT_SPAN,
    INCLUDE_PEER_CERTIFICATE,
];

/// The native GrpcService fields refused.
pub(super) const GRPC_SERVICE: &[Refusal] = &[field(
    "google_grpc",
    "is not supported: a wasm filter calls out through Envoy; use envoy_grpc",
)];

/// Every key of `object` (in its order) that names a field refused outright, with its error.
pub(super) fn refused_fields(
    object: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    refused: &[Refusal],
) -> Vec<(String, ConfigError)> {
    let mut found = Vec::new();
    for key in object.keys() {
        let snake = to_snake_case(key);
        if let Some(refusal) = refused
            .iter()
            .find(|r| r.refused == Refused::Field && r.name == snake)
        {
            let error = ConfigError::new(format!("{prefix}{}", refusal.name), refusal.reason);
            found.push((key.clone(), error));
        }
    }
    found
}

pub(super) fn to_snake_case(name: &str) -> String {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::config::Config;

    const SERVICE: &str = r#""grpc_service": {"envoy_grpc": {"cluster_name": "authz"}}"#;

    fn refused_value(refusal: &Refusal) -> &'static str {
        match refusal.refused {
            Refused::Field | Refused::Value(true) => "true",
            Refused::Value(false) => "false",
        }
    }

    #[test]
    fn every_refused_ext_authz_field_is_refused_with_its_reason() {
        for refusal in EXT_AUTHZ {
            let json = format!(
                r#"{{{SERVICE}, "{}": {}}}"#,
                refusal.name,
                refused_value(refusal)
            );
            let error = Config::parse(json.as_bytes()).expect_err(refusal.name);
            assert_eq!(error.field, refusal.name);
            assert_eq!(error.reason, refusal.reason);
        }
    }

    #[test]
    fn every_refused_grpc_service_field_is_refused_with_its_reason() {
        for refusal in GRPC_SERVICE {
            let json = format!(
                r#"{{"grpc_service": {{"envoy_grpc": {{"cluster_name": "authz"}}, "{}": {{}}}}}}"#,
                refusal.name
            );
            let error = Config::parse(json.as_bytes()).expect_err(refusal.name);
            assert_eq!(error.field, format!("grpc_service.{}", refusal.name));
            assert_eq!(error.reason, refusal.reason);
        }
    }

    #[test]
    fn the_value_a_field_takes_is_accepted() {
        for refusal in EXT_AUTHZ {
            let Refused::Value(refused) = refusal.refused else {
                continue;
            };
            let json = format!(r#"{{{SERVICE}, "{}": {}}}"#, refusal.name, !refused);
            Config::parse(json.as_bytes()).expect(refusal.name);
        }
    }
}
