//! The cache's parts without a stream: the key's delimiting and every part of it, the entry's
//! encoding and what a damaged one reads as, the table's slots and compare-and-swap, and what a
//! server says about keeping its answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use super::entry::{Class, Entry, RawAnswer, MAX_ANSWER_BYTES};
use super::key::{digest, sha256, Digest, KeyParts};
use super::table::{Found, Stored, Table};
use super::ttl::{self, ServerTtl};
use crate::config::decision_cache::CacheKey;
use crate::host::CAS_MISMATCH;
use crate::mock_host::{MockHost, SharedData};

const CONFIG: Digest = [7; 32];

fn key(headers: &[&str]) -> CacheKey {
    CacheKey {
        headers: headers.iter().map(|h| (*h).to_owned()).collect(),
        path: true,
        query: false,
        method: true,
        host: true,
        source_principal: true,
    }
}

fn parts<'a>(headers: &'a [(&'a [u8], &'a [u8])]) -> KeyParts<'a> {
    KeyParts {
        config_hash: &CONFIG,
        route: None,
        step: 0,
        service: b"ext_authz",
        context_extensions: b"",
        passthrough: b"",
        metadata: b"",
        route_metadata: b"",
        headers,
        principal: None,
    }
}

const REQUEST: &[(&[u8], &[u8])] = &[
    (b":method", b"GET"),
    (b":path", b"/a?x=1"),
    (b":authority", b"example.com"),
    (b"authorization", b"Bearer one"),
];

#[test]
fn parts_are_delimited_so_shifted_bytes_are_another_key() {
    let key = key(&["x-a", "x-b"]);
    let one: &[(&[u8], &[u8])] = &[(b"x-a", b"ab"), (b"x-b", b"c")];
    let two: &[(&[u8], &[u8])] = &[(b"x-a", b"a"), (b"x-b", b"bc")];
    assert_ne!(digest(&key, &parts(one)), digest(&key, &parts(two)));
    // Two values are not one value with a comma, nor the same values in another order.
    let key = key_of("x-a");
    let split: &[(&[u8], &[u8])] = &[(b"x-a", b"1"), (b"x-a", b"2")];
    let joined: &[(&[u8], &[u8])] = &[(b"x-a", b"1,2")];
    let swapped: &[(&[u8], &[u8])] = &[(b"x-a", b"2"), (b"x-a", b"1")];
    let d = |h| digest(&key, &parts(h));
    assert_ne!(d(split), d(joined));
    assert_ne!(d(split), d(swapped));
}

fn key_of(header: &str) -> CacheKey {
    key(&[header])
}

#[test]
fn an_absent_header_is_not_an_empty_one() {
    let key = key_of("authorization");
    let empty: &[(&[u8], &[u8])] = &[(b"authorization", b"")];
    assert_ne!(digest(&key, &parts(&[])), digest(&key, &parts(empty)));
    // Nor is an absent :method an empty one.
    let no_method: &[(&[u8], &[u8])] = &[(b":path", b"/")];
    let empty_method: &[(&[u8], &[u8])] = &[(b":path", b"/"), (b":method", b"")];
    assert_ne!(
        digest(&key, &parts(no_method)),
        digest(&key, &parts(empty_method))
    );
}

#[test]
fn every_part_of_the_key_changes_the_digest() {
    let key = key_of("authorization");
    let base = digest(&key, &parts(REQUEST));
    assert_eq!(
        base,
        digest(&key, &parts(REQUEST)),
        "the same request, the same key"
    );
    let with = |name: &[u8], value: &'static [u8]| {
        let mut headers: Vec<(&[u8], &[u8])> = REQUEST
            .iter()
            .filter(|(k, _)| *k != name)
            .copied()
            .collect();
        headers.push((name, value));
        digest(&key, &parts(&headers))
    };
    let mut seen = vec![base];
    let mut differs = |d: Digest, what: &str| {
        assert!(!seen.contains(&d), "{what} did not change the digest");
        seen.push(d);
    };
    differs(with(b"authorization", b"Bearer two"), "authorization");
    differs(with(b":path", b"/b?x=1"), "path");
    differs(with(b":method", b"POST"), "method");
    differs(with(b":authority", b"other.com"), "host");
    let p = parts(REQUEST);
    differs(
        digest(
            &key,
            &KeyParts {
                route: Some(0),
                ..p
            },
        ),
        "route",
    );
    differs(
        digest(
            &key,
            &KeyParts {
                route: Some(1),
                ..p
            },
        ),
        "another route",
    );
    differs(digest(&key, &KeyParts { step: 1, ..p }), "step");
    differs(
        digest(
            &key,
            &KeyParts {
                config_hash: &[8; 32],
                ..p
            },
        ),
        "config hash",
    );
    differs(
        digest(
            &key,
            &KeyParts {
                service: b"other",
                ..p
            },
        ),
        "service",
    );
    differs(
        digest(
            &key,
            &KeyParts {
                context_extensions: b"\x0a\x01x",
                ..p
            },
        ),
        "context extensions",
    );
    differs(
        digest(
            &key,
            &KeyParts {
                passthrough: b"p",
                ..p
            },
        ),
        "passthrough",
    );
    differs(
        digest(
            &key,
            &KeyParts {
                metadata: b"m",
                ..p
            },
        ),
        "metadata",
    );
    differs(
        digest(
            &key,
            &KeyParts {
                route_metadata: b"m",
                ..p
            },
        ),
        "route metadata",
    );
    differs(
        digest(
            &key,
            &KeyParts {
                principal: Some(b"spiffe://a"),
                ..p
            },
        ),
        "principal",
    );
    differs(
        digest(
            &key,
            &KeyParts {
                principal: Some(b""),
                ..p
            },
        ),
        "TLS without a principal vs plaintext",
    );
    // The query only counts when keyed on.
    assert_eq!(with(b":path", b"/a?x=2"), base, "query off: same key");
    let query = CacheKey {
        query: true,
        ..key.clone()
    };
    let q = |path: &'static [u8]| {
        let headers: Vec<(&[u8], &[u8])> = vec![(b":path", path)];
        digest(&query, &parts(&headers))
    };
    assert_ne!(q(b"/a?x=1"), q(b"/a?x=2"));
    assert_ne!(q(b"/a"), q(b"/a?"), "no query is not an empty one");
    // Parts switched off are out of the key.
    let bare = CacheKey {
        headers: vec![],
        path: false,
        query: false,
        method: false,
        host: false,
        source_principal: false,
    };
    let other: &[(&[u8], &[u8])] = &[(b":path", b"/z"), (b":method", b"PUT")];
    assert_eq!(
        digest(
            &bare,
            &KeyParts {
                principal: Some(b"x"),
                ..parts(REQUEST)
            }
        ),
        digest(&bare, &parts(other))
    );
}

fn entry(digest: Digest, class: Class, fresh_for: u64, stale_for: u64) -> Entry {
    let now = Duration::from_secs(1_000);
    Entry {
        digest,
        stored_at: now,
        fresh_until: now + Duration::from_secs(fresh_for),
        stale_until: now + Duration::from_secs(fresh_for + stale_for),
        class,
        answer: RawAnswer::Http {
            headers: b"h".to_vec(),
            body: b"body".to_vec(),
        },
    }
}

#[test]
fn an_entry_reads_back_as_written() {
    let written = entry([1; 32], Class::Deny, 5, 0);
    assert_eq!(Entry::decode(&written.encode().unwrap()), Some(written));
    let grpc = Entry {
        answer: RawAnswer::Grpc(vec![1, 2, 3]),
        ..entry([2; 32], Class::Allow, 5, 5)
    };
    assert_eq!(Entry::decode(&grpc.encode().unwrap()), Some(grpc));
}

#[test]
fn a_truncated_damaged_or_foreign_value_is_no_entry() {
    let bytes = entry([1; 32], Class::Allow, 5, 0).encode().unwrap();
    for len in 0..bytes.len() {
        assert_eq!(Entry::decode(&bytes[..len]), None, "truncated to {len}");
    }
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        assert_eq!(Entry::decode(&damaged), None, "byte {at} flipped");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(Entry::decode(&longer), None);
    let mut other_version = bytes;
    other_version[3] = 2;
    assert_eq!(Entry::decode(&other_version), None);
    assert_eq!(Entry::decode(b"not an entry at all"), None);
}

#[test]
fn an_answer_over_the_cap_is_not_encoded() {
    let big = Entry {
        answer: RawAnswer::Grpc(vec![0; MAX_ANSWER_BYTES + 1]),
        ..entry([1; 32], Class::Allow, 5, 0)
    };
    assert_eq!(big.encode(), None);
    let host = MockHost::new();
    assert_eq!(Table::new(10).store(&host, &big, 0), Stored::TooBig);
    assert!(host.shared_data().values().is_empty());
}

#[test]
fn two_keys_in_one_slot_do_not_meet() {
    let table = Table::new(1);
    let host = MockHost::new();
    let now = Duration::from_secs(1_000);
    assert_eq!(
        table.store(&host, &entry([1; 32], Class::Allow, 5, 0), 0),
        Stored::Yes
    );
    assert!(matches!(
        table.lookup(&host, &[1; 32], now).found,
        Found::Fresh(_)
    ));
    assert_eq!(table.lookup(&host, &[2; 32], now).found, Found::Miss);
    // A digest that differs only past the slot index is still another key.
    let mut close = [1; 32];
    close[31] = 0;
    assert_eq!(table.slot_key(&close), table.slot_key(&[1; 32]));
    assert_eq!(table.lookup(&host, &close, now).found, Found::Miss);
    assert_eq!(
        host.shared_data().values().len(),
        1,
        "one slot, whatever the keys"
    );
}

#[test]
fn freshness_then_staleness_then_nothing() {
    let table = Table::new(10);
    let host = MockHost::new();
    table.store(&host, &entry([1; 32], Class::Allow, 5, 10), 0);
    table.store(&host, &entry([2; 32], Class::Deny, 5, 10), 0);
    let at = |s: u64, d: Digest| {
        table
            .lookup(&host, &d, Duration::from_secs(1_000 + s))
            .found
    };
    assert!(matches!(at(4, [1; 32]), Found::Fresh(_)));
    assert!(matches!(at(5, [1; 32]), Found::Stale(_)));
    assert!(matches!(at(14, [1; 32]), Found::Stale(_)));
    assert_eq!(at(15, [1; 32]), Found::Miss);
    assert!(matches!(at(4, [2; 32]), Found::Fresh(_)));
    assert_eq!(
        at(5, [2; 32]),
        Found::Miss,
        "a denial is never served stale"
    );
}

#[test]
fn a_write_after_another_workers_loses_and_is_not_retried() {
    let shared = SharedData::default();
    let a = MockHost::new().with_shared_data(&shared);
    let b = MockHost::new().with_shared_data(&shared);
    let table = Table::new(1);
    table.store(&a, &entry([1; 32], Class::Allow, 5, 0), 0);
    let now = Duration::from_secs(1_000);
    let seen_by_a = table.lookup(&a, &[2; 32], now);
    let seen_by_b = table.lookup(&b, &[3; 32], now);
    assert_eq!(
        table.store(&b, &entry([3; 32], Class::Allow, 5, 0), seen_by_b.cas),
        Stored::Yes
    );
    assert_eq!(
        table.store(&a, &entry([2; 32], Class::Allow, 5, 0), seen_by_a.cas),
        Stored::Refused(CAS_MISMATCH)
    );
    assert!(matches!(
        table.lookup(&a, &[3; 32], now).found,
        Found::Fresh(_)
    ));
}

#[test]
fn a_failing_host_is_a_miss() {
    let host = MockHost::new().failing("get_shared_data", 2);
    assert_eq!(
        Table::new(1).lookup(&host, &[1; 32], Duration::ZERO).found,
        Found::Miss
    );
}

#[test]
fn an_http_server_says_it_with_cache_control() {
    let cc = |v: &'static str| ttl::http(&[(b"cache-control".as_slice(), v.as_bytes())]);
    assert_eq!(ttl::http(&[]), ServerTtl::Unsaid);
    assert_eq!(cc("max-age=10"), ServerTtl::Max(Duration::from_secs(10)));
    assert_eq!(
        cc("public, max-age=\"7\""),
        ServerTtl::Max(Duration::from_secs(7))
    );
    assert_eq!(
        cc("max-age=10, s-maxage=3"),
        ServerTtl::Max(Duration::from_secs(3))
    );
    for never in [
        "no-store",
        "no-cache",
        "private",
        "Private=\"x\"",
        "max-age=soon",
    ] {
        assert_eq!(cc(never), ServerTtl::NoStore, "{never}");
    }
    let two = ttl::http(&[
        (b"cache-control".as_slice(), b"max-age=5".as_slice()),
        (b"Cache-Control".as_slice(), b"no-store".as_slice()),
    ]);
    assert_eq!(two, ServerTtl::NoStore, "every value counts");
    let thirty = Duration::from_secs(30);
    assert_eq!(cc("max-age=60").bound(thirty), thirty, "the shorter wins");
    assert_eq!(cc("max-age=5").bound(thirty), Duration::from_secs(5));
    assert_eq!(cc("no-store").bound(thirty), Duration::ZERO);
}

#[test]
fn a_grpc_server_says_it_with_cache_ttl() {
    let metadata = |value: serde_json::Value| {
        let object = serde_json::json!({ "cache_ttl": value });
        crate::proto::structpb::encode_struct(object.as_object().unwrap())
    };
    assert_eq!(ttl::grpc(&[]), ServerTtl::Unsaid);
    assert_eq!(
        ttl::grpc(&metadata("10s".into())),
        ServerTtl::Max(Duration::from_secs(10))
    );
    assert_eq!(
        ttl::grpc(&metadata("0s".into())),
        ServerTtl::Max(Duration::ZERO)
    );
    assert_eq!(ttl::grpc(&metadata("ten".into())), ServerTtl::NoStore);
    assert_eq!(ttl::grpc(&metadata(10.into())), ServerTtl::NoStore);
    let other = serde_json::json!({"user": "alice"});
    assert_eq!(
        ttl::grpc(&crate::proto::structpb::encode_struct(
            other.as_object().unwrap()
        )),
        ServerTtl::Unsaid
    );
}

#[test]
fn the_config_hash_is_sha256() {
    // FIPS 180-2's "abc".
    assert_eq!(
        sha256(b"abc")[..4],
        [0xba, 0x78, 0x16, 0xbf],
        "the digest is SHA-256"
    );
}
