//! Property tests of the CheckResponse decoder: valid answers encoded with `envoy-types`, then
//! mutated (bit flips, truncation at every byte, byte insertion, splicing, wrong wire types,
//! over-long varints, lengths past the end, nesting 100 / 101 / 1,000 / 10,000 deep) and random
//! bytes, through the hand-written decoder (`proto::response`, `decision::Answer`) and through
//! prost with Envoy's own types. The two must accept and refuse the same inputs, and decode the
//! same content; the decoder must never panic.
//!
//! Seeded: the seed is printed, and `DECODER_PROPERTY_SEED=<n>` replays a run.
//!
//! Documented exceptions (where the two are allowed to differ):
//! - `Metadata::decode` (the host's metadata, not an answer) keeps each namespace's Struct and Any
//!   as bytes, unchecked, and hands them to the auth server as they are: Envoy wrote them, and
//!   nothing in the filter decodes them. prost decodes them, so it refuses some bytes ours
//!   accepts; whatever prost accepts, ours accepts with the same namespaces.
//! - A Struct's NaN or infinite number, and a `Value` with no kind, become JSON `null` (JSON has
//!   no other way to carry them); prost keeps them as they are. Both accept such answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `append` is deprecated in Envoy's protos, and still read by native and by this filter.
#![allow(deprecated)]

mod common;
use common::Rng;

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3 as auth;
use envoy_types::pb::google::protobuf::{value::Kind, Any, BoolValue, ListValue, Struct, Value};
use envoy_types::pb::google::rpc::Status;
use ext_authz_filter::decision::{Answer, CheckError, Decision};
use ext_authz_filter::mutation_rules::MutationPolicy;
use ext_authz_filter::proto::response as ours;
use ext_authz_filter::proto::structpb::decode_struct;
use prost::Message;
use serde_json::{Map, Value as Json};

fn seeded() -> Rng {
    Rng::seeded("DECODER_PROPERTY_SEED", 0x5eed_dec0_de00_0015_u64)
}

const TEXTS: &[&str] = &[
    "",
    "x-user",
    "alice",
    "caf\u{e9}",
    "\u{2603} snow",
    "Bearer abc.def",
    "a somewhat longer value that needs more than one byte of length, \
     so that the length prefix is two bytes long once this text is repeated: ...........",
];

fn text(rng: &mut Rng) -> String {
    let t = rng.pick(TEXTS);
    if rng.chance(8) {
        t.repeat(3)
    } else {
        (*t).to_owned()
    }
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let kind = match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => None,
        1 => Some(Kind::NullValue(0)),
        2 => Some(Kind::NumberValue(*rng.pick(&[
            0.0,
            1.5,
            -2.0,
            1e300,
            f64::NAN,
            f64::INFINITY,
        ]))),
        3 => Some(Kind::StringValue(text(rng))),
        4 => Some(Kind::BoolValue(rng.chance(2))),
        5 => Some(Kind::StructValue(random_struct(rng, depth - 1))),
        _ => Some(Kind::ListValue(ListValue {
            values: (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        })),
    };
    Value { kind }
}

fn random_struct(rng: &mut Rng, depth: usize) -> Struct {
    Struct {
        fields: (0..rng.below(4))
            .map(|_| (text(rng), random_value(rng, depth)))
            .collect(),
    }
}

fn random_option(rng: &mut Rng) -> core::HeaderValueOption {
    core::HeaderValueOption {
        header: rng.chance(8).then_some(()).map_or_else(
            || {
                Some(core::HeaderValue {
                    key: text(rng),
                    value: text(rng),
                    raw_value: if rng.chance(4) {
                        vec![0xff, b'r']
                    } else {
                        vec![]
                    },
                })
            },
            |()| None,
        ),
        append: rng.chance(3).then(|| BoolValue {
            value: rng.chance(2),
        }),
        append_action: rng.below(5) as i32,
        keep_empty_value: rng.chance(3),
    }
}

fn random_options(rng: &mut Rng) -> Vec<core::HeaderValueOption> {
    (0..rng.below(4)).map(|_| random_option(rng)).collect()
}

fn random_denied(rng: &mut Rng) -> auth::DeniedHttpResponse {
    auth::DeniedHttpResponse {
        status: rng.chance(4).then_some(()).map_or_else(
            || {
                Some(HttpStatus {
                    code: *rng.pick(&[0, 200, 401, 403, 503, 600, -1]),
                })
            },
            |()| None,
        ),
        headers: random_options(rng),
        body: text(rng),
    }
}

/// A valid CheckResponse of a random shape, encoded by prost.
fn random_response(rng: &mut Rng) -> Vec<u8> {
    let http_response = match rng.below(4) {
        0 => None,
        1 => Some(auth::check_response::HttpResponse::DeniedResponse(
            random_denied(rng),
        )),
        2 => Some(auth::check_response::HttpResponse::ErrorResponse(
            random_denied(rng),
        )),
        _ => Some(auth::check_response::HttpResponse::OkResponse(
            auth::OkHttpResponse {
                headers: random_options(rng),
                headers_to_remove: (0..rng.below(3)).map(|_| text(rng)).collect(),
                dynamic_metadata: rng.chance(5).then(|| random_struct(rng, 2)),
                response_headers_to_add: random_options(rng),
                query_parameters_to_set: (0..rng.below(3))
                    .map(|_| core::QueryParameter {
                        key: text(rng),
                        value: text(rng),
                    })
                    .collect(),
                query_parameters_to_remove: (0..rng.below(3)).map(|_| text(rng)).collect(),
            },
        )),
    };
    auth::CheckResponse {
        status: rng.chance(5).then_some(()).map_or_else(
            || {
                Some(Status {
                    code: *rng.pick(&[0, 0, 0, 7, 16, -3]),
                    message: text(rng),
                    details: (0..rng.below(2))
                        .map(|_| Any {
                            type_url: text(rng),
                            value: vec![0xff, 0x01],
                        })
                        .collect(),
                })
            },
            |()| None,
        ),
        http_response,
        dynamic_metadata: rng.chance(2).then(|| random_struct(rng, 4)),
    }
    .encode_to_vec()
}

/// Where the tags of `bytes` are, at every depth a length-delimited field parses as a message:
/// `(offset, depth)`. Lenient on purpose: it only picks places to mutate.
fn tags(bytes: &[u8], base: usize, depth: usize, out: &mut Vec<(usize, usize)>) -> bool {
    let mut at = 0;
    let mut found = Vec::new();
    while at < bytes.len() {
        let Some((key, after)) = varint(bytes, at) else {
            return false;
        };
        found.push((base + at, depth));
        at = after;
        match key & 7 {
            0 => match varint(bytes, at) {
                Some((_, after)) => at = after,
                None => return false,
            },
            1 => at += 8,
            2 => {
                let Some((len, after)) = varint(bytes, at) else {
                    return false;
                };
                let Some(end) = after
                    .checked_add(len as usize)
                    .filter(|&e| e <= bytes.len())
                else {
                    return false;
                };
                let mut inner = Vec::new();
                if tags(&bytes[after..end], base + after, depth + 1, &mut inner) {
                    found.extend(inner);
                }
                at = end;
            }
            5 => at += 4,
            _ => return false,
        }
    }
    out.extend(found);
    at == bytes.len()
}

fn varint(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *bytes.get(at + i)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((value, at + i + 1));
        }
    }
    None
}

/// One random mutation of `sample` (`other` for splicing).
fn mutate(rng: &mut Rng, sample: &[u8], other: &[u8]) -> Vec<u8> {
    let mut bytes = sample.to_vec();
    let mut places = Vec::new();
    tags(sample, 0, 0, &mut places);
    match rng.below(7) {
        0 => {
            for _ in 0..=rng.below(3) {
                if !bytes.is_empty() {
                    let at = rng.below(bytes.len());
                    bytes[at] ^= 1 << rng.below(8);
                }
            }
        }
        1 => {
            let at = rng.below(bytes.len() + 1);
            let byte = *rng.pick(&[0x00, 0x08, 0x0a, 0x12, 0x22, 0x53, 0x54, 0x80, 0xff]);
            bytes.insert(
                at,
                if rng.chance(2) {
                    byte
                } else {
                    rng.next() as u8
                },
            );
        }
        2 => {
            let cut = rng.below(bytes.len() + 1);
            let from = rng.below(other.len() + 1);
            bytes.truncate(cut);
            bytes.extend_from_slice(&other[from..]);
        }
        3 => {
            // Another wire type for a field, anywhere.
            if let Some(&(at, _)) = (!places.is_empty()).then(|| rng.pick(&places)) {
                bytes[at] = (bytes[at] & !7) | rng.below(8) as u8;
            }
        }
        4 => {
            // A top-level tag or varint written over-long: 10 bytes (which prost reads) or 11.
            let top: Vec<usize> = places.iter().filter(|p| p.1 == 0).map(|p| p.0).collect();
            if let Some(&at) = (!top.is_empty()).then(|| rng.pick(&top)) {
                let (value, after) = varint(&bytes, at).expect("a tag");
                let width = *rng.pick(&[10, 11]);
                let mut long: Vec<u8> = (0..width - 1)
                    .map(|i| ((value >> (7 * i)) as u8 & 0x7f) | 0x80)
                    .collect();
                long.push(if width == 10 { (value >> 63) as u8 } else { 0 });
                bytes.splice(at..after, long);
            }
        }
        5 => {
            // A length far past the end (4 GB, or 2^63) after a top-level length-delimited tag.
            let top: Vec<usize> = places
                .iter()
                .filter(|p| p.1 == 0 && bytes[p.0] & 7 == 2)
                .map(|p| p.0)
                .collect();
            if let Some(&at) = (!top.is_empty()).then(|| rng.pick(&top)) {
                let (_, len_at) = varint(&bytes, at).expect("a tag");
                let (_, after) = varint(&bytes, len_at).expect("a length");
                let huge: &[u8] = if rng.chance(2) {
                    &[0xff, 0xff, 0xff, 0xff, 0x0f]
                } else {
                    &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]
                };
                bytes.splice(len_at..after, huge.iter().copied());
            }
        }
        _ => {
            let at = rng.below(bytes.len() + 1);
            let len = rng.below(4).min(bytes.len() - at);
            bytes.drain(at..at + len);
        }
    }
    bytes
}

/// A Struct as JSON, as `decode_struct` renders one.
fn struct_json(s: &Struct) -> Map<String, Json> {
    fn value(v: &Value) -> Json {
        match &v.kind {
            None | Some(Kind::NullValue(_)) => Json::Null,
            Some(Kind::NumberValue(n)) => {
                serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number)
            }
            Some(Kind::StringValue(s)) => s.clone().into(),
            Some(Kind::BoolValue(b)) => (*b).into(),
            Some(Kind::StructValue(s)) => struct_json(s).into(),
            Some(Kind::ListValue(l)) => l.values.iter().map(value).collect(),
        }
    }
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), value(v)))
        .collect()
}

fn option(o: core::HeaderValueOption) -> ours::HeaderValueOption {
    ours::HeaderValueOption {
        header: o.header.map(|h| ours::HeaderValue {
            key: h.key,
            value: h.value,
            raw_value: h.raw_value,
        }),
        append: o.append.map(|b| ours::BoolValue { value: b.value }),
        append_action: o.append_action,
    }
}

fn denied(d: auth::DeniedHttpResponse) -> ours::DeniedHttpResponse {
    ours::DeniedHttpResponse {
        status: d.status.map(|s| ours::HttpStatus { code: s.code }),
        headers: d.headers.into_iter().map(option).collect(),
        body: d.body,
    }
}

type Decoded = (ours::CheckResponse, Map<String, Json>);

/// What prost decodes, in the filter's types, `dynamic_metadata` as JSON.
fn from_envoy(r: auth::CheckResponse) -> Decoded {
    use auth::check_response::HttpResponse as H;
    let json = struct_json(&r.dynamic_metadata.unwrap_or_default());
    let response = ours::CheckResponse {
        status: r.status.map(|s| ours::RpcStatus {
            code: s.code,
            message: s.message,
        }),
        http_response: r.http_response.map(|h| match h {
            H::DeniedResponse(d) => ours::HttpResponse::DeniedResponse(denied(d)),
            H::ErrorResponse(d) => ours::HttpResponse::ErrorResponse(denied(d)),
            H::OkResponse(ok) => ours::HttpResponse::OkResponse(ours::OkHttpResponse {
                headers: ok.headers.into_iter().map(option).collect(),
                headers_to_remove: ok.headers_to_remove,
                response_headers_to_add: ok
                    .response_headers_to_add
                    .into_iter()
                    .map(option)
                    .collect(),
                query_parameters_to_set: ok
                    .query_parameters_to_set
                    .into_iter()
                    .map(|q| ours::QueryParameter {
                        key: q.key,
                        value: q.value,
                    })
                    .collect(),
                query_parameters_to_remove: ok.query_parameters_to_remove,
            }),
        }),
        dynamic_metadata: Vec::new(),
    };
    (response, json)
}

fn decode_ours(bytes: &[u8]) -> Option<Decoded> {
    let mut response = ours::CheckResponse::decode(bytes).ok()?;
    let metadata = std::mem::take(&mut response.dynamic_metadata);
    let json = decode_struct(&metadata).expect("a checked dynamic_metadata decodes");
    Some((response, json))
}

/// Counts of inputs tried, accepted and refused.
#[derive(Default, Debug)]
struct Tally {
    inputs: usize,
    accepted: usize,
}

/// The decoders agree on `bytes`; `Answer` refuses what prost refuses; nothing panics.
fn check(bytes: &[u8], tally: &mut Tally) {
    let outcome = std::panic::catch_unwind(|| {
        let theirs = auth::CheckResponse::decode(bytes).ok().map(from_envoy);
        let ours = decode_ours(bytes);
        assert_eq!(ours, theirs, "CheckResponse decoded differently");
        for policy in [
            MutationPolicy::default(),
            MutationPolicy {
                validate: true,
                rules: None,
            },
        ] {
            let answer = Answer::from_check_response(bytes, &policy);
            if theirs.is_none() {
                assert!(
                    matches!(answer.decision, Decision::Error(CheckError::Undecodable(_))),
                    "an undecodable answer must fail the check: {:?}",
                    answer.decision
                );
                assert!(answer.dynamic_metadata.is_empty());
            }
        }
        // The host's metadata: ours may accept more (see the top), never less.
        if let Ok(theirs) = core::Metadata::decode(bytes) {
            let ours = ours::Metadata::decode(bytes).expect("what prost accepts, ours accepts");
            let keys = |m: &[(String, Vec<u8>)]| {
                let mut keys: Vec<String> = m.iter().map(|(k, _)| k.clone()).collect();
                keys.sort();
                keys
            };
            let mut filter: Vec<String> = theirs.filter_metadata.into_keys().collect();
            let mut typed: Vec<String> = theirs.typed_filter_metadata.into_keys().collect();
            filter.sort();
            typed.sort();
            assert_eq!(keys(&ours.filter_metadata), filter);
            assert_eq!(keys(&ours.typed_filter_metadata), typed);
        }
        theirs.is_some()
    });
    match outcome {
        Ok(accepted) => {
            tally.inputs += 1;
            tally.accepted += usize::from(accepted);
        }
        Err(_) => panic!("input {bytes:02x?} (see the seed printed above)"),
    }
}

#[test]
fn mutated_answers_are_decoded_as_prost_decodes_them() {
    let mut rng = seeded();
    let samples: Vec<Vec<u8>> = (0..300).map(|_| random_response(&mut rng)).collect();
    let mut tally = Tally::default();
    for sample in &samples {
        check(sample, &mut tally);
    }
    assert_eq!(tally.accepted, samples.len(), "every valid sample decodes");
    // Truncation at every byte of the first samples.
    for sample in samples.iter().take(40) {
        for cut in 0..sample.len() {
            check(&sample[..cut], &mut tally);
        }
    }
    for _ in 0..30_000 {
        let sample = rng.pick(&samples).clone();
        let other = rng.pick(&samples).clone();
        let mut bytes = mutate(&mut rng, &sample, &other);
        if rng.chance(4) {
            bytes = mutate(&mut rng, &bytes, &other);
        }
        check(&bytes, &mut tally);
    }
    // Random bytes, biased towards keys this decoder knows and short lengths.
    for _ in 0..10_000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len)
            .map(|_| match rng.below(3) {
                0 => *rng.pick(&[0x08, 0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32, 0x10, 0x18, 0x53]),
                1 => rng.below(8) as u8,
                _ => rng.next() as u8,
            })
            .collect();
        check(&bytes, &mut tally);
    }
    println!("{tally:?}");
    assert!(tally.inputs > 40_000, "{tally:?}");
    // Enough of both outcomes that the agreement means something.
    assert!(tally.accepted > 2_000, "{tally:?}");
    assert!(tally.inputs - tally.accepted > 10_000, "{tally:?}");
}

/// `levels` messages nested through ListValues or Structs in `dynamic_metadata` (field 4) or in
/// the deprecated `ok_response.dynamic_metadata`, built inside out without recursion.
fn deep(levels: usize, lists: bool, in_ok: bool) -> Vec<u8> {
    let cycle: &[u8] = if lists {
        &[0x32, 0x0a]
    } else {
        &[0x2a, 0x0a, 0x12]
    };
    let head: &[u8] = if in_ok { &[0x1a, 0x1a] } else { &[0x22] };
    let tags: Vec<u8> = head
        .iter()
        .chain(&[0x0a, 0x12])
        .chain(cycle.iter().cycle())
        .copied()
        .take(levels)
        .collect();
    // The innermost message empty: valid whatever its type.
    let mut reversed = Vec::new();
    for &tag in tags.iter().rev() {
        let mut len = reversed.len();
        let mut prefix = Vec::new();
        while len >= 0x80 {
            prefix.push((len as u8) | 0x80);
            len >>= 7;
        }
        prefix.push(len as u8);
        reversed.extend(prefix.iter().rev());
        reversed.push(tag);
    }
    reversed.reverse();
    reversed
}

#[test]
fn deep_answers_fail_the_check_at_prost_s_limit() {
    let mut tally = Tally::default();
    for lists in [true, false] {
        for in_ok in [false, true] {
            for levels in [99, 100, 101, 1_000, 10_000] {
                let bytes = deep(levels, lists, in_ok);
                check(&bytes, &mut tally);
                let accepted = ours::CheckResponse::decode(&bytes).is_ok();
                assert_eq!(accepted, levels <= 100, "{levels} levels, lists {lists}");
                let answer = Answer::from_check_response(&bytes, &MutationPolicy::default());
                assert_eq!(
                    matches!(answer.decision, Decision::Error(CheckError::Undecodable(_))),
                    levels > 100,
                    "{levels} levels: {:?}",
                    answer.decision
                );
            }
        }
    }
}
