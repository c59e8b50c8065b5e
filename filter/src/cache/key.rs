//! A request's cache key: what the server's decision may depend on, as length-delimited parts
//! (a tag byte, a u32 length, the bytes), digested with SHA-256. Only the digest is kept.
//!
//! Each part has its tag, and an absent value its own tag, so no two different requests write
//! the same bytes: `("ab", "c")` is not `("a", "bc")`, an absent header is not an empty one, and
//! two values of a header are not one value holding a comma.

use sha2::{Digest as _, Sha256};

use crate::config::decision_cache::CacheKey;

/// SHA-256 of the key bytes.
pub type Digest = [u8; 32];

/// Bumped whenever the key's layout changes, so an old layout's entry is never read as a new one.
const KEY_VERSION: u8 = 1;

#[repr(u8)]
#[derive(Clone, Copy)]
enum Tag {
    ConfigHash = 1,
    TopLevel,
    Route,
    Step,
    Service,
    ContextExtensions,
    Passthrough,
    Metadata,
    RouteMetadata,
    HeaderName,
    HeaderValue,
    HeaderAbsent,
    Path,
    Query,
    NoQuery,
    Method,
    Host,
    Principal,
    NoTls,
    Absent,
}

/// Everything a key is made of, read by the stream (see `stream::cache`).
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    /// SHA-256 of the plugin's whole configuration: a changed config never meets an old entry.
    pub config_hash: &'a Digest,
    /// The route rule that applied, `None` for the top level.
    pub route: Option<usize>,
    /// The step of the chain (0 for a single service).
    pub step: usize,
    /// The service called: a gRPC target or an HTTP cluster and path prefix.
    pub service: &'a [u8],
    /// The effective `context_extensions`, encoded as they go into the CheckRequest.
    pub context_extensions: &'a [u8],
    /// What earlier steps hand on in `metadata_context`.
    pub passthrough: &'a [u8],
    /// The stream's and the route's metadata, when namespaces of them go into the CheckRequest.
    pub metadata: &'a [u8],
    pub route_metadata: &'a [u8],
    /// The request headers as this step sees them.
    pub headers: &'a [(&'a [u8], &'a [u8])],
    /// The TLS peer's principal; `None` on a plaintext connection. Read only when keyed on.
    pub principal: Option<&'a [u8]>,
}

/// The digest of a request's key under the configured `key`.
pub fn digest(key: &CacheKey, parts: &KeyParts<'_>) -> Digest {
    let mut bytes = KeyBytes::default();
    bytes.0.push(KEY_VERSION);
    bytes.part(Tag::ConfigHash, parts.config_hash);
    match parts.route {
        None => bytes.part(Tag::TopLevel, &[]),
        Some(i) => bytes.part(Tag::Route, &(i as u64).to_le_bytes()),
    }
    bytes.part(Tag::Step, &(parts.step as u64).to_le_bytes());
    bytes.part(Tag::Service, parts.service);
    bytes.part(Tag::ContextExtensions, parts.context_extensions);
    bytes.part(Tag::Passthrough, parts.passthrough);
    bytes.part(Tag::Metadata, parts.metadata);
    bytes.part(Tag::RouteMetadata, parts.route_metadata);
    let header = |name| values(parts.headers, name);
    for name in &key.headers {
        bytes.part(Tag::HeaderName, name.as_bytes());
        let mut values = header(name).peekable();
        if values.peek().is_none() {
            bytes.part(Tag::HeaderAbsent, &[]);
        }
        for value in values {
            bytes.part(Tag::HeaderValue, value);
        }
    }
    let path = header(":path").next();
    let (path, query) = match path {
        Some(path) => match path.iter().position(|&b| b == b'?') {
            Some(at) => (Some(&path[..at]), Some(&path[at + 1..])),
            None => (Some(path), None),
        },
        None => (None, None),
    };
    if key.path {
        bytes.optional(Tag::Path, path);
    }
    if key.query {
        match query {
            Some(query) => bytes.part(Tag::Query, query),
            None => bytes.part(Tag::NoQuery, &[]),
        }
    }
    if key.method {
        bytes.optional(Tag::Method, header(":method").next());
    }
    if key.host {
        bytes.optional(Tag::Host, header(":authority").next());
    }
    if key.source_principal {
        match parts.principal {
            Some(principal) => bytes.part(Tag::Principal, principal),
            None => bytes.part(Tag::NoTls, &[]),
        }
    }
    bytes.digest()
}

/// Every value of a header, in order.
fn values<'a>(
    headers: &'a [(&'a [u8], &'a [u8])],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| *v)
}

/// The key being written.
#[derive(Default)]
struct KeyBytes(Vec<u8>);

impl KeyBytes {
    fn part(&mut self, tag: Tag, value: &[u8]) {
        self.0.push(tag as u8);
        // A part over 4 GiB cannot come from a request; saturating keeps it tagged, not wrapped.
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(value);
    }

    fn optional(&mut self, tag: Tag, value: Option<&[u8]>) {
        match value {
            Some(value) => self.part(tag, value),
            // The tag of what is absent follows, so "no :method" differs from an empty one.
            None => {
                self.part(Tag::Absent, &[]);
                self.0.push(tag as u8);
            }
        }
    }

    fn digest(&self) -> Digest {
        sha256(&self.0)
    }
}

/// SHA-256 of `bytes`: the key's digest, and the configuration's hash.
pub fn sha256(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}
