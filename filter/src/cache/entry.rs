//! One slot's value in shared data: the key's digest, the entry's clock, and the server's answer
//! as it was received. Reading checks every length and a checksum, so a truncated, foreign or
//! older-version value is no entry at all, never a panic.
//!
//! Layout (integers little-endian):
//! `"XAC"` + version (4) | digest (32) | stored_at, fresh_until, stale_until: ns since the epoch
//! (3 × 8) | kind (1) | class (1) | first length (4) | second length (4) | the answer |
//! FNV-1a 64 of all before (8).

use std::time::Duration;

use super::key::Digest;

const MAGIC: [u8; 4] = *b"XAC\x01";
const HEADER: usize = 4 + 32 + 3 * 8 + 1 + 1 + 4 + 4;
const TRAILER: usize = 8;
/// The most answer bytes one entry holds; a bigger answer is not cached.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// The most bytes one slot's value takes: what `max_entries` costs at worst, per slot.
pub const MAX_ENTRY_BYTES: usize = HEADER + MAX_ANSWER_BYTES + TRAILER;

/// The server's answer as received, so that a hit is decoded, reviewed and applied by the very
/// code that handles a fresh answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawAnswer {
    /// The CheckResponse bytes.
    Grpc(Vec<u8>),
    /// The answer's header map (the ABI's serialized form) and the body as the filter read it.
    Http { headers: Vec<u8>, body: Vec<u8> },
}

impl RawAnswer {
    pub fn len(&self) -> usize {
        match self {
            Self::Grpc(bytes) => bytes.len(),
            Self::Http { headers, body } => headers.len() + body.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which way the server decided; a denial is never served stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Allow = 1,
    Deny = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub digest: Digest,
    pub stored_at: Duration,
    /// Served without asking until then.
    pub fresh_until: Duration,
    /// An allow may be served when the server fails until then.
    pub stale_until: Duration,
    pub class: Class,
    pub answer: RawAnswer,
}

impl Entry {
    /// The slot's value; `None` when the answer is over [`MAX_ANSWER_BYTES`].
    pub fn encode(&self) -> Option<Vec<u8>> {
        if self.answer.len() > MAX_ANSWER_BYTES {
            return None;
        }
        let (kind, first, second): (u8, &[u8], &[u8]) = match &self.answer {
            RawAnswer::Grpc(bytes) => (1, bytes, &[]),
            RawAnswer::Http { headers, body } => (2, headers, body),
        };
        let mut out = Vec::with_capacity(HEADER + first.len() + second.len() + TRAILER);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.digest);
        for at in [self.stored_at, self.fresh_until, self.stale_until] {
            out.extend_from_slice(&nanos(at).to_le_bytes());
        }
        out.push(kind);
        out.push(self.class as u8);
        // Both under MAX_ANSWER_BYTES: they fit.
        out.extend_from_slice(&(first.len() as u32).to_le_bytes());
        out.extend_from_slice(&(second.len() as u32).to_le_bytes());
        out.extend_from_slice(first);
        out.extend_from_slice(second);
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        Some(out)
    }

    /// Reads a slot's value; anything but an entry this version wrote, whole, is `None`.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let body_len = bytes.len().checked_sub(TRAILER)?;
        let (body, sum) = bytes.split_at(body_len);
        if body.len() < HEADER || body[..4] != MAGIC || fnv1a(body).to_le_bytes() != sum {
            return None;
        }
        let mut reader = Reader(&body[4..]);
        let digest: Digest = reader.take(32)?.try_into().ok()?;
        let stored_at = reader.time()?;
        let fresh_until = reader.time()?;
        let stale_until = reader.time()?;
        let kind = reader.take(1)?[0];
        let class = match reader.take(1)?[0] {
            1 => Class::Allow,
            2 => Class::Deny,
            _ => return None,
        };
        let first = reader.u32()? as usize;
        let second = reader.u32()? as usize;
        if first.checked_add(second)? != reader.0.len() {
            return None;
        }
        let first_bytes = reader.take(first)?.to_vec();
        let second_bytes = reader.take(second)?.to_vec();
        let answer = match kind {
            1 if second == 0 => RawAnswer::Grpc(first_bytes),
            2 => RawAnswer::Http {
                headers: first_bytes,
                body: second_bytes,
            },
            _ => return None,
        };
        Some(Self {
            digest,
            stored_at,
            fresh_until,
            stale_until,
            class,
            answer,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn time(&mut self) -> Option<Duration> {
        Some(Duration::from_nanos(u64::from_le_bytes(
            self.take(8)?.try_into().ok()?,
        )))
    }
}

/// Nanoseconds since the epoch; a time past 2554 saturates.
pub fn nanos(at: Duration) -> u64 {
    u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)
}

/// Catches a torn or truncated value; the digest inside, not this, is what stops a wrong hit.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
