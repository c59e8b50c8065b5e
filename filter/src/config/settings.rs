//! What a check needs: the service it goes to, the `context_extensions` it carries, and whether
//! the body goes along. The top level has one; each checked route has its own, merged over it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::ConfigError;
use super::grpc_service::GrpcService;
use super::http_service::HttpService;
use super::messages::WithRequestBody;
use super::steps::Steps;
use crate::proto::wire;

/// The authorization server a check goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Service {
    Grpc(GrpcService),
    Http(HttpService),
    /// `steps`: several checks in a row.
    Steps(Steps),
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

pub(super) fn context_extensions(
    field: &str,
    entries: BTreeMap<String, String>,
) -> Result<ContextExtensions, ConfigError> {
    if entries.keys().any(String::is_empty) {
        return Err(ConfigError::new(field, "keys must not be empty"));
    }
    Ok(ContextExtensions::new(entries))
}
