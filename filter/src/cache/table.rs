//! The fixed table of slots in proxy-wasm shared data. Envoy keeps shared data for the life of the
//! process, per VM id, with no delete and no eviction, so the table is `max_entries` keys chosen by
//! the digest: its memory is bounded whatever the keys, and a reconfiguration reuses the same slots
//! (the config hash inside the digest makes an old entry a miss).
//!
//! Writes carry the compare-and-swap token read at lookup: a worker that lost the race skips
//! its write, and nothing retries.

use std::time::Duration;

use super::entry::{Class, Entry};
use super::key::Digest;
use crate::host::{Host, HostStatus};

/// The shared-data key of slot `n` is this followed by `n`.
pub const SLOT_PREFIX: &str = "ext_authz.cache.v1.";

/// What a slot holds for a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Served without asking.
    Fresh(Entry),
    /// An allow past its freshness but within `stale_if_error`: served only if the server fails.
    Stale(Entry),
    Miss,
}

/// A lookup's result, and the token its slot had, for the store that may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub found: Found,
    pub cas: u32,
}

/// How a store went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Yes,
    /// The answer is over the per-entry cap.
    TooBig,
    /// The host refused, most often because another worker wrote the slot first.
    Refused(HostStatus),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    max_entries: u32,
}

impl Table {
    pub fn new(max_entries: u32) -> Self {
        Self {
            max_entries: max_entries.max(1),
        }
    }

    /// The slot a digest lives in: its first 8 bytes, modulo the table's size.
    pub fn slot_key(&self, digest: &Digest) -> String {
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let slot = u64::from_le_bytes(first) % u64::from(self.max_entries);
        format!("{SLOT_PREFIX}{slot}")
    }

    /// Reads the digest's slot. Another key's entry, an unreadable value and a failed read are
    /// all a miss.
    pub fn lookup(&self, host: &impl Host, digest: &Digest, now: Duration) -> Lookup {
        let Ok(Some((value, cas))) = host.get_shared_data(&self.slot_key(digest)) else {
            return Lookup {
                found: Found::Miss,
                cas: 0,
            };
        };
        let found = match Entry::decode(&value) {
            // Compared in full: the slot index is only the digest's first bytes.
            Some(entry) if entry.digest == *digest => {
                if now < entry.fresh_until {
                    Found::Fresh(entry)
                } else if entry.class == Class::Allow && now < entry.stale_until {
                    Found::Stale(entry)
                } else {
                    Found::Miss
                }
            }
            _ => Found::Miss,
        };
        Lookup { found, cas }
    }

    /// Writes an entry into its slot if the slot is still as `cas` saw it.
    pub fn store(&self, host: &impl Host, entry: &Entry, cas: u32) -> Stored {
        let Some(value) = entry.encode() else {
            return Stored::TooBig;
        };
        match host.set_shared_data(&self.slot_key(&entry.digest), &value, cas) {
            Ok(()) => Stored::Yes,
            Err(status) => Stored::Refused(status),
        }
    }
}
