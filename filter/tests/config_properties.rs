//! Property tests of the config reader: every config written in the README and in the config
//! tests, mutated as text (bit flips, truncation at every byte, insertions, deletions, splices,
//! deep nesting, bytes that are not UTF-8) and as JSON trees (a value swapped for one of another
//! kind, wrapped in an array, a key dropped, renamed or added), through `Config::parse`. It must
//! never panic, and every refusal must name the field it is about: a path whose parents are in
//! the document, or nothing only for what is about the whole document.
//!
//! Seeded: the seed is printed, and `CONFIG_PROPERTY_SEED=<n>` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::Rng;

use ext_authz_filter::config::{Config, ConfigError};
use serde_json::{json, Value};

fn seeded() -> Rng {
    Rng::seeded("CONFIG_PROPERTY_SEED", 0xc0f1_6000_0000_0015_u64)
}

/// Every JSON object in the README's `json` blocks and in the config tests' raw strings.
fn seeds() -> Vec<Value> {
    let mut texts: Vec<&str> = Vec::new();
    for source in [
        include_str!("../src/config/tests.rs"),
        include_str!("../src/config/route/tests.rs"),
        include_str!("config_strictness.rs"),
    ] {
        texts.extend(
            source
                .split("r#\"")
                .skip(1)
                .filter_map(|s| s.split("\"#").next()),
        );
    }
    let readme = include_str!("../../README.md");
    texts.extend(
        readme
            .split("```json")
            .skip(1)
            .filter_map(|s| s.split("```").next()),
    );
    let service = r#""grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}}"#;
    texts
        .into_iter()
        .filter_map(|t| serde_json::from_str(&t.replace("SERVICE", service)).ok())
        .filter(Value::is_object)
        .collect()
}

fn snake(name: &str) -> String {
    let mut out = String::new();
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

/// Whether every parent of `path` is in `doc`: a key under either spelling (keys may hold dots,
/// as namespaces do), or an index. The last segment may be missing: it can be the field refused
/// for being absent.
fn parents_resolve(doc: &Value, path: &str) -> bool {
    let last_segment = |rest: &str| match rest.strip_prefix('[') {
        Some(index) => index.find('[').is_none() && !index.contains('.'),
        None => !rest.contains(['.', '[']),
    };
    if last_segment(path) {
        return true;
    }
    match doc {
        Value::Array(items) => path
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
            .and_then(|(index, rest)| Some((items.get(index.parse::<usize>().ok()?)?, rest)))
            .is_some_and(|(item, rest)| parents_resolve(item, rest.trim_start_matches('.'))),
        Value::Object(map) => {
            map.keys().any(|key| snake(key) == snake(path))
                || path.match_indices(['.', '[']).any(|(end, _)| {
                    let (name, rest) = path.split_at(end);
                    map.iter()
                        .filter(|(key, _)| snake(key) == snake(name))
                        .any(|(_, value)| parents_resolve(value, rest.trim_start_matches('.')))
                })
        }
        _ => false,
    }
}

/// Reasons that are about the whole document, and so name no field.
const DOCUMENT_REASONS: &[&str] = &[
    "is not JSON",
    "must be a JSON object",
    "the plugin configuration is empty",
    "duplicate field",
    "missing field",
    // A key that is the empty string: its path is the empty name, which cannot be told apart.
    "unknown field ``",
];

#[derive(Default, Debug)]
struct Tally {
    inputs: usize,
    accepted: usize,
    named: usize,
}

/// `Config::parse` on `bytes` does not panic, and a refusal names its field.
fn check(bytes: &[u8], doc: Option<&Value>, tally: &mut Tally) {
    let outcome = std::panic::catch_unwind(|| Config::parse(bytes));
    let Ok(result) = outcome else {
        panic!(
            "Config::parse panicked on {:?} (see the seed printed above)",
            String::from_utf8_lossy(bytes)
        );
    };
    tally.inputs += 1;
    let error: ConfigError = match result {
        Ok(_) => {
            tally.accepted += 1;
            return;
        }
        Err(error) => error,
    };
    let text = String::from_utf8_lossy(bytes);
    if error.field.is_empty() {
        assert!(
            DOCUMENT_REASONS.iter().any(|r| error.reason.starts_with(r)),
            "{text}: {error:?} names no field"
        );
        return;
    }
    tally.named += 1;
    if let Some(doc) = doc {
        assert!(
            parents_resolve(doc, &error.field),
            "{text}: {error:?} names a field not in the document"
        );
    }
}

/// A value of some kind, now and then one serde could mistake for a message or a number.
fn random_value(rng: &mut Rng) -> Value {
    // Deep, within serde_json's own limit of 128 levels, so the tree can be built.
    let deep = |open: &str, inner: &str, close: &str, n: usize| {
        let text = format!("{}{inner}{}", open.repeat(n), close.repeat(n));
        serde_json::from_str::<Value>(&text).expect("valid JSON")
    };
    match rng.below(16) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(4_294_967_296_u64),
        5 => json!(1.5),
        6 => json!(1e300),
        7 => json!(""),
        8 => json!(*rng.pick(&["0s", "-1s", "0.5s", "1e3", "403", "true", "V3", "x-user"])),
        9 => json!("caf\u{e9} \u{2603}"),
        10 => json!([]),
        11 => json!(["ext_authz"]),
        12 => json!({}),
        13 => json!({"cluster_name": "c", "bogus": 1}),
        14 => deep("[", "", "]", 1 + rng.below(120)),
        _ => deep("{\"a\":", "1", "}", 1 + rng.below(120)),
    }
}

/// The paths to every node of `value`, as JSON pointers.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                pointers(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// One change to the tree at a random node.
fn mutate_tree(rng: &mut Rng, seed: &Value) -> Value {
    let mut doc = seed.clone();
    let mut all = Vec::new();
    pointers(&doc, String::new(), &mut all);
    let at = rng.pick(&all).clone();
    let choice = rng.below(6);
    let replacement = random_value(rng);
    let Some(node) = doc.pointer_mut(&at) else {
        return doc;
    };
    match (choice, &mut *node) {
        (0 | 1, _) => *node = replacement,
        // The array-for-a-message mistake, and its reverse.
        (2, _) => *node = Value::Array(vec![node.take()]),
        (3, Value::Array(items)) if !items.is_empty() => *node = items.remove(0),
        (3, Value::Object(map)) => {
            let key = map.keys().nth(rng.below(map.len())).cloned();
            if let Some(key) = key {
                map.remove(&key);
            }
        }
        (4, Value::Object(map)) => {
            let key = map.keys().nth(rng.below(map.len())).cloned();
            if let Some(key) = key {
                let value = map.remove(&key).unwrap_or_default();
                // lowerCamelCase, as protobuf JSON also spells it.
                let mut camel = String::new();
                let mut upper = false;
                for c in key.chars() {
                    if c == '_' {
                        upper = true;
                    } else if upper {
                        camel.push(c.to_ascii_uppercase());
                        upper = false;
                    } else {
                        camel.push(c);
                    }
                }
                map.insert(camel, value);
            }
        }
        (_, Value::Object(map)) => {
            map.insert("bogus".into(), replacement);
        }
        _ => *node = replacement,
    }
    doc
}

const PIECES: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\",
    b"null",
    b"1e999",
    b"-",
    b"\xff",
    b"\xc3",
    b"\"a\":1,",
    b"[[[[[[[[",
    b"\\u0000",
    b"\\ud800",
];
const OPENINGS: &[&[u8]] = &[b"[", b"{\"a\":", b"{\"steps\":["];

/// One change to the text.
fn mutate_text(rng: &mut Rng, text: &[u8], other: &[u8]) -> Vec<u8> {
    let mut bytes = text.to_vec();
    let at = rng.below(bytes.len() + 1);
    match rng.below(6) {
        0 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        1 => {
            let piece = *rng.pick(PIECES);
            bytes.splice(at..at, piece.iter().copied());
        }
        2 => {
            let len = rng.below(8).min(bytes.len() - at);
            bytes.drain(at..at + len);
        }
        3 => {
            let from = rng.below(other.len() + 1);
            bytes.truncate(at);
            bytes.extend_from_slice(&other[from..]);
        }
        4 => {
            let end = (at + rng.below(16)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            bytes.splice(at..at, copy);
        }
        _ => {
            let open = *rng.pick(OPENINGS);
            let depth = *rng.pick(&[100, 127, 128, 129, 1000, 10_000]);
            let mut nested = open.repeat(depth);
            nested.extend_from_slice(&bytes[at..]);
            bytes.truncate(at);
            bytes.extend(nested);
        }
    }
    bytes
}

#[test]
fn mutated_configs_never_panic_and_name_their_field() {
    let mut rng = seeded();
    let seeds = seeds();
    assert!(seeds.len() > 40, "only {} seed configs", seeds.len());
    let texts: Vec<Vec<u8>> = seeds
        .iter()
        .map(|s| serde_json::to_vec_pretty(s).unwrap())
        .collect();
    let mut tally = Tally::default();
    for (seed, text) in seeds.iter().zip(&texts) {
        check(text, Some(seed), &mut tally);
    }
    // Truncation at every byte of a few.
    for text in texts.iter().take(6) {
        for cut in 0..text.len() {
            check(&text[..cut], None, &mut tally);
        }
    }
    for _ in 0..8_000 {
        let i = rng.below(seeds.len());
        let mut doc = mutate_tree(&mut rng, &seeds[i]);
        if rng.below(3) == 0 {
            doc = mutate_tree(&mut rng, &doc);
        }
        let text = serde_json::to_vec(&doc).unwrap();
        check(&text, Some(&doc), &mut tally);
    }
    for _ in 0..8_000 {
        let text = rng.pick(&texts).clone();
        let other = rng.pick(&texts).clone();
        let bytes = mutate_text(&mut rng, &text, &other);
        let doc = serde_json::from_slice::<Value>(&bytes).ok();
        check(&bytes, doc.as_ref(), &mut tally);
    }
    // Bytes of no shape at all.
    for _ in 0..2_000 {
        let bytes: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
        check(&bytes, None, &mut tally);
    }
    println!("{tally:?}");
    assert!(tally.inputs > 18_000, "{tally:?}");
    assert!(tally.accepted > 300, "{tally:?}");
    assert!(tally.named > 5_000, "{tally:?}");
}

#[test]
fn paths_are_resolved_as_written() {
    let doc = json!({"grpcService": {"initial_metadata": [{"key": 1}]}});
    assert!(parents_resolve(
        &doc,
        "grpc_service.initial_metadata[0].key"
    ));
    assert!(parents_resolve(&doc, "grpc_service.timeout"));
    assert!(!parents_resolve(&doc, "http_service.server_uri"));
    assert!(!parents_resolve(
        &doc,
        "grpc_service.initial_metadata[1].key"
    ));
}
