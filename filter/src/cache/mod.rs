//! The decision cache (`decision_cache`): the auth server's answers, kept in proxy-wasm shared
//! data so that every worker of the Envoy serves what one of them learned.
//!
//! What is kept is the server's answer as received ([`RawAnswer`]), never a decision of ours: a
//! hit is decoded, reviewed and applied by the same code as a fresh answer, so it changes the
//! request and the response exactly as the original did. The entry is found by the SHA-256 digest
//! of a length-delimited key ([`key`]), kept in a fixed table of slots ([`table`]), encoded with
//! its clock and a checksum ([`entry`]); how long an answer is kept is in [`ttl`].
//!
//! The stream's side (when to look up, store, or serve stale) is `stream::cache`.

pub mod entry;
pub mod key;
pub mod table;
pub mod ttl;

pub use entry::{Class, Entry, RawAnswer};
pub use key::Digest;
pub use table::{Found, Lookup, Stored, Table};

use crate::config::decision_cache::DecisionCache;
use crate::config::HttpService;
use crate::decision::{Answer, CheckError, Decision};
use crate::header_map;
use crate::host::{Host, HostStatus};
use crate::http_check;

/// The value of `x-envoy-auth-cache` (with `debug_header`).
pub const DEBUG_HEADER: &str = "x-envoy-auth-cache";

/// A plugin's cache: its settings, the hash of its configuration, its table and counters.
#[derive(Debug, Clone)]
pub struct Cache {
    pub settings: DecisionCache,
    /// SHA-256 of the plugin's configuration bytes, part of every key.
    pub config_hash: Digest,
    pub table: Table,
    pub stats: CacheStats,
}

impl Cache {
    /// `None` when the configuration has no `decision_cache`: no counters are defined then.
    pub fn configure(
        host: &impl Host,
        settings: Option<&DecisionCache>,
        configuration: &[u8],
        stat_prefix: &str,
    ) -> Result<Option<Self>, HostStatus> {
        let Some(settings) = settings else {
            return Ok(None);
        };
        Ok(Some(Self {
            settings: settings.clone(),
            config_hash: key::sha256(configuration),
            table: Table::new(settings.max_entries),
            stats: CacheStats::define(host, stat_prefix)?,
        }))
    }
}

/// `cache_hit`, `cache_miss`, `cache_stale_served`, `cache_store`, `cache_skip`, beside the
/// plugin's other counters. Every check the cache may answer is a hit, a miss or (not cacheable)
/// a skip; every miss ends in a store or a skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    hit: u32,
    miss: u32,
    stale_served: u32,
    store: u32,
    skip: u32,
}

/// One of the cache's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Hit,
    Miss,
    StaleServed,
    Store,
    Skip,
}

impl CacheStats {
    fn define(host: &impl Host, stat_prefix: &str) -> Result<Self, HostStatus> {
        let prefix = crate::stats::prefix(stat_prefix);
        let names = [
            "cache_hit",
            "cache_miss",
            "cache_stale_served",
            "cache_store",
            "cache_skip",
        ];
        let mut ids = [0; 5];
        crate::stats::define_counters(host, &prefix, &names, &mut ids)?;
        let [hit, miss, stale_served, store, skip] = ids;
        Ok(Self {
            hit,
            miss,
            stale_served,
            store,
            skip,
        })
    }

    pub fn count(&self, host: &impl Host, event: Event) {
        host.increment_metric(match event {
            Event::Hit => self.hit,
            Event::Miss => self.miss,
            Event::StaleServed => self.stale_served,
            Event::Store => self.store,
            Event::Skip => self.skip,
        });
    }
}

impl RawAnswer {
    /// Reads a kept answer as a fresh one is read: a CheckResponse, or an HTTP server's answer
    /// under the `http_service` it came from.
    pub fn decode(&self, http: Option<&HttpService>) -> Answer {
        match (self, http) {
            (Self::Grpc(bytes), _) => Answer::decode(bytes),
            (Self::Http { headers, body }, Some(http)) => Answer {
                decision: match header_map::parse(headers) {
                    Some(headers) => http_check::decision(http, &headers, body.clone()),
                    None => Decision::Error(CheckError::Undecodable(
                        "a cached HTTP answer's headers".into(),
                    )),
                },
                dynamic_metadata: Vec::new(),
            },
            (Self::Http { .. }, None) => Answer::error(CheckError::Undecodable(
                "a cached HTTP answer for a gRPC step".into(),
            )),
        }
    }

    /// What the server said about keeping it: for gRPC in the answer's `dynamic_metadata`.
    pub fn server_ttl(&self, dynamic_metadata: &[u8]) -> ttl::ServerTtl {
        match self {
            Self::Grpc(_) => ttl::grpc(dynamic_metadata),
            Self::Http { headers, .. } => match header_map::parse(headers) {
                Some(headers) => ttl::http(&headers),
                None => ttl::ServerTtl::NoStore,
            },
        }
    }
}

#[cfg(test)]
mod tests;
