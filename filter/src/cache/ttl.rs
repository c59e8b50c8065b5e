//! What the server says about caching its answer, and how long an answer is kept: the server's
//! word wins over the configured `ttl` (or `denied_ttl`) when it is shorter.
//!
//! A gRPC server says it in `dynamic_metadata` key `cache_ttl` (a duration string, `"0s"`: do not
//! cache); an HTTP server in `cache-control`, read as a shared cache reads it (`no-store`,
//! `no-cache`, `private`: not kept; `s-maxage` over `max-age`). What cannot be read is taken for
//! "do not cache": a misread never keeps an answer longer than the server meant.

use std::time::Duration;

use crate::config::duration;
use crate::proto::structpb;

/// The `dynamic_metadata` key a gRPC server sets its answer's lifetime in.
pub const GRPC_TTL_KEY: &str = "cache_ttl";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTtl {
    /// Nothing said: the configured TTL applies.
    Unsaid,
    /// Kept at most this long.
    Max(Duration),
    /// Not kept.
    NoStore,
}

impl ServerTtl {
    /// How long an answer is fresh: the configured TTL, or the server's when shorter.
    pub fn bound(self, configured: Duration) -> Duration {
        match self {
            Self::Unsaid => configured,
            Self::Max(max) => max.min(configured),
            Self::NoStore => Duration::ZERO,
        }
    }
}

/// From a CheckResponse's `dynamic_metadata` (an encoded Struct, empty if none).
pub fn grpc(dynamic_metadata: &[u8]) -> ServerTtl {
    if dynamic_metadata.is_empty() {
        return ServerTtl::Unsaid;
    }
    let Some(object) = structpb::decode_struct(dynamic_metadata) else {
        return ServerTtl::NoStore;
    };
    match object.get(GRPC_TTL_KEY) {
        None => ServerTtl::Unsaid,
        Some(serde_json::Value::String(text)) => match duration::parse(text) {
            Ok(ttl) => ServerTtl::Max(ttl),
            Err(_) => ServerTtl::NoStore,
        },
        Some(_) => ServerTtl::NoStore,
    }
}

/// From an HTTP answer's headers: every `cache-control` value, all directives together.
pub fn http(headers: &[(&[u8], &[u8])]) -> ServerTtl {
    let mut max_age = None;
    let mut s_maxage = None;
    let directives = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(b"cache-control"))
        .flat_map(|(_, v)| v.split(|&b| b == b','));
    for directive in directives {
        let Ok(directive) = std::str::from_utf8(directive) else {
            return ServerTtl::NoStore;
        };
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        let seconds = || value.and_then(|v| v.parse::<u64>().ok());
        match name.to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" | "private" => return ServerTtl::NoStore,
            "max-age" => match seconds() {
                Some(s) => max_age = Some(s),
                None => return ServerTtl::NoStore,
            },
            "s-maxage" => match seconds() {
                Some(s) => s_maxage = Some(s),
                None => return ServerTtl::NoStore,
            },
            _ => {}
        }
    }
    match s_maxage.or(max_age) {
        Some(seconds) => ServerTtl::Max(Duration::from_secs(seconds)),
        None => ServerTtl::Unsaid,
    }
}
