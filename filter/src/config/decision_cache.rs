//! `decision_cache`, this filter's own section: the shared cache of the auth server's answers (see
//! [`crate::cache`]), raw and validated side by side.

use super::reader::message;
use std::time::Duration;

use serde::Deserialize;

use super::duration::ProtoDuration;
use super::error::ConfigError;
use super::messages::is_header_name;

/// How long an allow is served without asking, when `ttl` is unset.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_ENTRIES: u32 = 10_000;
/// Each slot holds at most one answer of up to `MAX_ANSWER_BYTES`; a million slots is ~16 GiB
/// worst case, already more than any proxy should hold.
pub const MAX_MAX_ENTRIES: u32 = 1_000_000;

/// A cache of the auth server's answers, shared by every worker of the Envoy.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawDecisionCache {
    /// What the server's decision may depend on, besides the plugin's own settings (always in).
    #[serde(default)]
    pub key: Option<RawCacheKey>,
    /// How long an allow is served without asking. Default "30s".
    #[serde(default)]
    pub ttl: Option<ProtoDuration>,
    /// The same for denials. Default "0s": denials are not cached.
    #[serde(default, alias = "deniedTtl")]
    pub denied_ttl: Option<ProtoDuration>,
    /// Slots of the fixed table; memory is bounded by this (see the README). Default 10000.
    #[serde(default, alias = "maxEntries")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1_000_000)))]
    pub max_entries: Option<i64>,
    /// When the server fails, an allow that expired less than this ago is served. Default "0s".
    #[serde(default, alias = "staleIfError")]
    pub stale_if_error: Option<ProtoDuration>,
    /// Add `x-envoy-auth-cache: hit|miss|stale` to the client's response. Default false.
    #[serde(default, alias = "debugHeader")]
    pub debug_header: bool,
}

/// The request's parts that go into the key.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawCacheKey {
    /// Exact request header names; a named header that is absent is keyed as absent.
    #[serde(default)]
    pub headers: Vec<String>,
    /// The path without its query. Default true.
    #[serde(default)]
    pub path: Option<bool>,
    /// The query. Default false.
    #[serde(default)]
    pub query: bool,
    /// Default true.
    #[serde(default)]
    pub method: Option<bool>,
    /// `:authority`. Default true.
    #[serde(default)]
    pub host: Option<bool>,
    /// The TLS peer's principal, as the CheckRequest's `source.principal`. Default true.
    #[serde(default, alias = "sourcePrincipal")]
    pub source_principal: Option<bool>,
}

/// `decision_cache`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionCache {
    pub key: CacheKey,
    pub ttl: Duration,
    pub denied_ttl: Duration,
    pub max_entries: u32,
    pub stale_if_error: Duration,
    pub debug_header: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// Lower case, as Envoy hands header names over.
    pub headers: Vec<String>,
    pub path: bool,
    pub query: bool,
    pub method: bool,
    pub host: bool,
    pub source_principal: bool,
}

pub(super) fn decision_cache(
    field: &str,
    raw: RawDecisionCache,
) -> Result<DecisionCache, ConfigError> {
    let key = raw.key.unwrap_or_default();
    let mut headers = Vec::with_capacity(key.headers.len());
    for (i, name) in key.headers.into_iter().enumerate() {
        if !is_header_name(name.as_bytes()) {
            return Err(ConfigError::new(
                format!("{field}.key.headers[{i}]"),
                format!("{name:?} is not a header name"),
            ));
        }
        headers.push(name.to_ascii_lowercase());
    }
    let max_entries = match raw.max_entries {
        None => DEFAULT_MAX_ENTRIES,
        Some(n) => match u32::try_from(n) {
            Ok(n @ 1..=MAX_MAX_ENTRIES) => n,
            _ => {
                return Err(ConfigError::new(
                    format!("{field}.max_entries"),
                    format!("{n} is not between 1 and {MAX_MAX_ENTRIES}"),
                ))
            }
        },
    };
    let duration = |d: Option<ProtoDuration>, default: Duration| d.map_or(default, |d| d.0);
    Ok(DecisionCache {
        key: CacheKey {
            headers,
            path: key.path.unwrap_or(true),
            query: key.query,
            method: key.method.unwrap_or(true),
            host: key.host.unwrap_or(true),
            source_principal: key.source_principal.unwrap_or(true),
        },
        ttl: duration(raw.ttl, DEFAULT_TTL),
        denied_ttl: duration(raw.denied_ttl, Duration::ZERO),
        max_entries,
        stale_if_error: duration(raw.stale_if_error, Duration::ZERO),
        debug_header: raw.debug_header,
    })
}

message!(RawDecisionCache {
    "key" => key,
    "ttl" => ttl,
    "denied_ttl" => denied_ttl,
    "max_entries" => max_entries,
    "stale_if_error" => stale_if_error,
    "debug_header" => debug_header,
});

message!(RawCacheKey {
    "headers" => headers,
    "path" => path,
    "query" => query,
    "method" => method,
    "host" => host,
    "source_principal" => source_principal,
});

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use crate::config::Config;

    fn parse(cache: &str) -> Result<Config, crate::config::ConfigError> {
        let json = format!(
            r#"{{"grpc_service": {{"envoy_grpc": {{"cluster_name": "a"}}}}, "decision_cache": {cache}}}"#
        );
        Config::parse(json.as_bytes())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cache = parse("{}").unwrap().decision_cache.unwrap();
        assert_eq!(cache.ttl, super::DEFAULT_TTL);
        assert_eq!(cache.denied_ttl, super::Duration::ZERO);
        assert_eq!(cache.stale_if_error, super::Duration::ZERO);
        assert_eq!(cache.max_entries, 10_000);
        assert!(!cache.debug_header);
        let key = cache.key;
        assert!(key.path && key.method && key.host && key.source_principal);
        assert!(!key.query && key.headers.is_empty());
    }

    #[test]
    fn the_issues_example_parses() {
        let cache = parse(
            r#"{"key": {"headers": ["Authorization", "x-api-key"], "path": true, "method": true,
                "host": true, "source_principal": true, "query": false},
                "ttl": "30s", "denied_ttl": "5s", "max_entries": 1, "stale_if_error": "60s",
                "debug_header": true}"#,
        )
        .unwrap()
        .decision_cache
        .unwrap();
        assert_eq!(cache.key.headers, ["authorization", "x-api-key"]);
        assert_eq!(cache.denied_ttl, super::Duration::from_secs(5));
        assert_eq!(cache.stale_if_error, super::Duration::from_secs(60));
        assert_eq!(cache.max_entries, 1);
        assert!(cache.debug_header);
    }

    #[test]
    fn bad_values_are_refused_with_the_field_named() {
        let refused = |cache: &str, field: &str| match parse(cache) {
            Ok(_) => panic!("{cache} was accepted"),
            Err(e) => assert_eq!(e.field, field, "{e}"),
        };
        refused(r#"{"max_entries": 0}"#, "decision_cache.max_entries");
        refused(r#"{"max_entries": 1000001}"#, "decision_cache.max_entries");
        refused(r#"{"max_entries": -1}"#, "decision_cache.max_entries");
        refused(r#"{"ttl": "-1s"}"#, "decision_cache.ttl");
        refused(r#"{"denied_ttl": "soon"}"#, "decision_cache.denied_ttl");
        refused(r#"{"stale_if_error": 5}"#, "decision_cache.stale_if_error");
        refused(
            r#"{"key": {"headers": ["a b"]}}"#,
            "decision_cache.key.headers[0]",
        );
        refused(r#"{"key": {"cookie": true}}"#, "decision_cache.key.cookie");
        refused(r#"{"size": 1}"#, "decision_cache.size");
    }
}
