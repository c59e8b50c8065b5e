//! The hand-written decoder against prost: twins of every message derived with prost, the same
//! bytes through both, the same answer (value, or refusal) every time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use prost::Message;

use super::*;

mod twin {
    pub use envoy_types::pb::google::protobuf::Struct;
    use prost::Message;

    #[derive(Clone, PartialEq, Message)]
    pub struct CheckResponse {
        #[prost(message, optional, tag = "1")]
        pub status: Option<RpcStatus>,
        #[prost(oneof = "HttpResponse", tags = "2, 3, 5")]
        pub http_response: Option<HttpResponse>,
        #[prost(message, optional, tag = "4")]
        pub dynamic_metadata: Option<Struct>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    #[allow(clippy::enum_variant_names)] // Envoy's names.
    pub enum HttpResponse {
        #[prost(message, tag = "2")]
        DeniedResponse(DeniedHttpResponse),
        #[prost(message, tag = "3")]
        OkResponse(OkHttpResponse),
        #[prost(message, tag = "5")]
        ErrorResponse(DeniedHttpResponse),
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct RpcStatus {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<envoy_types::pb::google::protobuf::Any>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct OkHttpResponse {
        #[prost(message, repeated, tag = "2")]
        pub headers: Vec<HeaderValueOption>,
        #[prost(message, optional, tag = "3")]
        pub dynamic_metadata: Option<Struct>,
        #[prost(string, repeated, tag = "5")]
        pub headers_to_remove: Vec<String>,
        #[prost(message, repeated, tag = "6")]
        pub response_headers_to_add: Vec<HeaderValueOption>,
        #[prost(message, repeated, tag = "7")]
        pub query_parameters_to_set: Vec<QueryParameter>,
        #[prost(string, repeated, tag = "8")]
        pub query_parameters_to_remove: Vec<String>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct DeniedHttpResponse {
        #[prost(message, optional, tag = "1")]
        pub status: Option<HttpStatus>,
        #[prost(message, repeated, tag = "2")]
        pub headers: Vec<HeaderValueOption>,
        #[prost(string, tag = "3")]
        pub body: String,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct HttpStatus {
        #[prost(int32, tag = "1")]
        pub code: i32,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct HeaderValueOption {
        #[prost(message, optional, tag = "1")]
        pub header: Option<HeaderValue>,
        #[prost(message, optional, tag = "2")]
        pub append: Option<BoolValue>,
        #[prost(int32, tag = "3")]
        pub append_action: i32,
        #[prost(bool, tag = "4")]
        pub keep_empty_value: bool,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct HeaderValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
        #[prost(bytes = "vec", tag = "3")]
        pub raw_value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct BoolValue {
        #[prost(bool, tag = "1")]
        pub value: bool,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct QueryParameter {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Metadata {
        #[prost(btree_map = "string, bytes", tag = "1")]
        pub filter_metadata: std::collections::BTreeMap<String, Vec<u8>>,
        #[prost(btree_map = "string, bytes", tag = "2")]
        pub typed_filter_metadata: std::collections::BTreeMap<String, Vec<u8>>,
    }
}

fn header_value(t: twin::HeaderValue) -> HeaderValue {
    HeaderValue {
        key: t.key,
        value: t.value,
        raw_value: t.raw_value,
    }
}

fn option(t: twin::HeaderValueOption) -> HeaderValueOption {
    HeaderValueOption {
        header: t.header.map(header_value),
        append: t.append.map(|b| BoolValue { value: b.value }),
        append_action: t.append_action,
    }
}

fn denied(t: twin::DeniedHttpResponse) -> DeniedHttpResponse {
    DeniedHttpResponse {
        status: t.status.map(|s| HttpStatus { code: s.code }),
        headers: t.headers.into_iter().map(option).collect(),
        body: t.body,
    }
}

/// What prost decodes, in this module's types.
fn from_twin(t: twin::CheckResponse) -> CheckResponse {
    CheckResponse {
        status: t.status.map(|s| RpcStatus {
            code: s.code,
            message: s.message,
        }),
        http_response: t.http_response.map(|r| match r {
            twin::HttpResponse::DeniedResponse(d) => HttpResponse::DeniedResponse(denied(d)),
            twin::HttpResponse::ErrorResponse(d) => HttpResponse::ErrorResponse(denied(d)),
            twin::HttpResponse::OkResponse(ok) => HttpResponse::OkResponse(OkHttpResponse {
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
                    .map(|q| QueryParameter {
                        key: q.key,
                        value: q.value,
                    })
                    .collect(),
                query_parameters_to_remove: ok.query_parameters_to_remove,
            }),
        }),
        // Compared as JSON by `agree`.
        dynamic_metadata: Vec::new(),
    }
}

/// A Struct as JSON, as `structpb::decode_struct` renders one: no kind, NaN and infinities null.
pub(super) fn struct_json(s: &twin::Struct) -> serde_json::Map<String, serde_json::Value> {
    use envoy_types::pb::google::protobuf::value::Kind;
    fn value(v: &envoy_types::pb::google::protobuf::Value) -> serde_json::Value {
        match &v.kind {
            None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
            Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
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

type Decoded = (CheckResponse, serde_json::Map<String, serde_json::Value>);

/// Our decoder's answer, its `dynamic_metadata` decoded as JSON.
fn ours(bytes: &[u8]) -> Option<Decoded> {
    let mut response = CheckResponse::decode(bytes).ok()?;
    let metadata = std::mem::take(&mut response.dynamic_metadata);
    let json = super::super::structpb::decode_struct(&metadata).expect("checked, so decodable");
    Some((response, json))
}

fn prost(bytes: &[u8]) -> Option<Decoded> {
    let response = twin::CheckResponse::decode(bytes).ok()?;
    let json = struct_json(&response.dynamic_metadata.clone().unwrap_or_default());
    Some((from_twin(response), json))
}

/// Both decoders agree on `bytes`: the same message, or both refuse.
fn agree(bytes: &[u8]) {
    assert_eq!(ours(bytes), prost(bytes), "CheckResponse {bytes:02x?}");
    let map = |pairs: Vec<(String, Vec<u8>)>| pairs.into_iter().collect::<BTreeMap<_, _>>();
    let ours = Metadata::decode(bytes)
        .ok()
        .map(|m| (map(m.filter_metadata), map(m.typed_filter_metadata)));
    let prost = twin::Metadata::decode(bytes)
        .ok()
        .map(|m| (m.filter_metadata, m.typed_filter_metadata));
    assert_eq!(ours, prost, "Metadata {bytes:02x?}");
}

fn twin_option(
    key: &str,
    value: &str,
    append: Option<bool>,
    action: i32,
) -> twin::HeaderValueOption {
    twin::HeaderValueOption {
        header: Some(twin::HeaderValue {
            key: key.into(),
            value: value.into(),
            raw_value: if value.is_empty() {
                b"raw\xff".to_vec()
            } else {
                Vec::new()
            },
        }),
        append: append.map(|value| twin::BoolValue { value }),
        append_action: action,
        keep_empty_value: value.is_empty(),
    }
}

/// A Struct with every kind of value, nested.
fn sample_struct() -> twin::Struct {
    use envoy_types::pb::google::protobuf::{value::Kind, ListValue, Value};
    let v = |kind| Value { kind: Some(kind) };
    let inner = twin::Struct {
        fields: [("k".to_owned(), v(Kind::StringValue("v".into())))].into(),
    };
    twin::Struct {
        fields: [
            ("".to_owned(), Value { kind: None }),
            ("n".to_owned(), v(Kind::NumberValue(1.5))),
            ("null".to_owned(), v(Kind::NullValue(0))),
            ("on".to_owned(), v(Kind::BoolValue(true))),
            ("s".to_owned(), v(Kind::StructValue(inner.clone()))),
            (
                "l".to_owned(),
                v(Kind::ListValue(ListValue {
                    values: vec![
                        v(Kind::StructValue(inner)),
                        v(Kind::StringValue("\u{e9}".into())),
                    ],
                })),
            ),
        ]
        .into(),
    }
}

/// Real responses of every shape, encoded by prost.
fn samples() -> Vec<Vec<u8>> {
    let ok = twin::OkHttpResponse {
        headers: vec![
            twin_option("x-user", "alice", None, 2),
            twin_option("x-a", "", Some(true), 0),
        ],
        headers_to_remove: vec!["x-r".into(), "caf\u{e9}".into()],
        response_headers_to_add: vec![twin_option("x-resp", "1", Some(false), 3)],
        query_parameters_to_set: vec![twin::QueryParameter {
            key: "k".into(),
            value: "v".into(),
        }],
        query_parameters_to_remove: vec!["q".into()],
        dynamic_metadata: Some(sample_struct()),
    };
    let denied = twin::DeniedHttpResponse {
        status: Some(twin::HttpStatus { code: 401 }),
        headers: vec![twin_option("www-authenticate", "Bearer", None, 1)],
        body: "no \u{2603}".into(),
    };
    let status = |code| {
        Some(twin::RpcStatus {
            code,
            message: "m".into(),
            details: vec![envoy_types::pb::google::protobuf::Any {
                type_url: "type.googleapis.com/x".into(),
                value: vec![0xff, 0x00],
            }],
        })
    };
    let mut metadata = twin::Metadata::default();
    metadata
        .filter_metadata
        .insert("ns".into(), vec![0x0a, 0x00]);
    metadata.filter_metadata.insert(String::new(), Vec::new());
    vec![
        twin::CheckResponse {
            status: status(0),
            http_response: Some(twin::HttpResponse::OkResponse(ok)),
            dynamic_metadata: Some(sample_struct()),
        }
        .encode_to_vec(),
        twin::CheckResponse {
            status: status(7),
            http_response: Some(twin::HttpResponse::DeniedResponse(denied.clone())),
            dynamic_metadata: None,
        }
        .encode_to_vec(),
        twin::CheckResponse {
            status: status(-1),
            http_response: Some(twin::HttpResponse::ErrorResponse(denied)),
            dynamic_metadata: None,
        }
        .encode_to_vec(),
        metadata.encode_to_vec(),
        Vec::new(),
    ]
}

#[test]
fn real_responses_decode_as_prost_decodes_them() {
    for sample in samples() {
        agree(&sample);
    }
    for sample in &samples()[..3] {
        assert!(CheckResponse::decode(sample).is_ok());
    }
}

#[test]
fn repeats_merge_append_and_replace_as_prost_does() {
    let samples = samples();
    // Two messages back to back: singular messages merge, repeated fields append, scalars and
    // strings take the last, a oneof switches variant or merges into the same one.
    for a in &samples {
        for b in &samples {
            agree(&[a.as_slice(), b.as_slice()].concat());
        }
    }
    // Unknown fields of every wire type, groups nested and not, are skipped.
    let unknown: &[&[u8]] = &[
        &[0x30, 0x96, 0x01],                   // field 6 varint
        &[0x39, 1, 2, 3, 4, 5, 6, 7, 8],       // field 7 fixed64
        &[0x42, 0x02, 0xff, 0xff],             // field 8 bytes
        &[0x4d, 1, 2, 3, 4],                   // field 9 fixed32
        &[0x53, 0x08, 0x01, 0x5b, 0x5c, 0x54], // field 10 group, a group inside
        &[0x53, 0x54],                         // an empty group
        &[0x53, 0x5c],                         // a group closed by the wrong end
        &[0x54],                               // an end without a start
        &[0x53],                               // a group never closed
        &[0x80, 0x80, 0x80, 0x80, 0x10, 0x00], // a key above u32
        &[0x02, 0x00],                         // field 0
        &[
            0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
        ], // a varint over 64 bits
        &[
            0x0a, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ], // 10 bytes, overlong
        &[0x08, 0x01],                         // status with the wrong wire type
        &[0x1a, 0x02, 0x10, 0x01],             // ok_response field 2 as a varint
    ];
    for sample in &samples {
        for extra in unknown {
            agree(&[sample.as_slice(), extra].concat());
            agree(&[extra, sample.as_slice()].concat());
        }
    }
}

#[test]
fn deep_groups_hit_the_same_limit() {
    for depth in [90, 98, 99, 100, 101, 150] {
        let mut bytes = vec![0x53; depth];
        bytes.extend(std::iter::repeat_n(0x54, depth));
        agree(&bytes);
        // The same groups inside ok_response.headers[0].header, deeper down.
        let inner = [vec![0x3b; depth], vec![0x3c; depth]].concat();
        let header = [vec![0x0a, inner.len() as u8], inner.clone()].concat();
        if header.len() < 0x80 {
            let option = [vec![0x0a, header.len() as u8], header].concat();
            let ok = [vec![0x12, option.len() as u8], option].concat();
            agree(&[vec![0x1a, ok.len() as u8], ok].concat());
        }
    }
}

#[test]
fn every_prefix_and_random_bytes_agree() {
    for sample in samples() {
        for cut in 0..sample.len() {
            agree(&sample[..cut]);
        }
        // Each byte flipped to a few values.
        for at in 0..sample.len() {
            for value in [
                0x00, 0x01, 0x07, 0x0a, 0x12, 0x53, 0x54, 0x7f, 0x80, 0xc3, 0xff,
            ] {
                let mut changed = sample.clone();
                changed[at] = value;
                agree(&changed);
            }
        }
    }
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 48) as usize;
        // Bytes biased towards valid keys and small lengths, so the decoders get somewhere.
        let bytes: Vec<u8> = (0..len)
            .map(|i| {
                let r = state.rotate_left(i as u32 * 7);
                match r % 4 {
                    0 => [0x08, 0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x10, 0x18][(r >> 8) as usize % 8],
                    1 => (r >> 16) as u8 % 8,
                    _ => (r >> 24) as u8,
                }
            })
            .collect();
        agree(&bytes);
    }
}

#[test]
fn metadata_maps_keep_the_last_value_of_a_key() {
    let entry = |key: &[u8], value: &[u8]| {
        let mut e = vec![0x0a, key.len() as u8];
        e.extend_from_slice(key);
        e.extend([0x12, value.len() as u8]);
        e.extend_from_slice(value);
        [vec![0x0a, e.len() as u8], e].concat()
    };
    let bytes = [entry(b"a", b"1"), entry(b"b", b"2"), entry(b"a", b"3")].concat();
    agree(&bytes);
    let decoded = Metadata::decode(&bytes).unwrap().filter_metadata;
    assert_eq!(
        decoded,
        [
            ("a".to_owned(), b"3".to_vec()),
            ("b".to_owned(), b"2".to_vec())
        ]
    );
    agree(&entry(b"\xff", b"x"));
}

/// Length-delimited fields nested by `tags`, outermost first, around `leaf`: built inside out in
/// one reversed buffer, so 10,000 levels cost no more than their bytes.
fn nest(tags: &[u8], leaf: &[u8]) -> Vec<u8> {
    let mut reversed: Vec<u8> = leaf.iter().rev().copied().collect();
    for &tag in tags.iter().rev() {
        let mut len = reversed.len();
        let mut varint = Vec::new();
        while len >= 0x80 {
            varint.push((len as u8) | 0x80);
            len >>= 7;
        }
        varint.push(len as u8);
        reversed.extend(varint.iter().rev());
        reversed.push(tag);
    }
    reversed.reverse();
    reversed
}

/// The tags of `levels` messages nested in a Struct, `first` being the Struct's own tag: through
/// ListValues (Value, ListValue, Value, ...) or through Structs (Value, Struct, entry, Value, ...).
fn struct_chain(first: &[u8], levels: usize, lists: bool) -> Vec<u8> {
    let cycle: &[u8] = if lists {
        &[0x32, 0x0a] // Value.list_value, ListValue.values
    } else {
        &[0x2a, 0x0a, 0x12] // Value.struct_value, Struct.fields, entry.value
    };
    let head = [first, &[0x0a, 0x12]].concat(); // the Struct, its entry, the entry's Value
    head.into_iter()
        .chain(cycle.iter().copied().cycle())
        .take(levels)
        .collect()
}

const UNKNOWN_VARINT: &[u8] = &[0x78, 0x01]; // field 15, skipped by both, but a level to skip

#[test]
fn nesting_stops_where_prost_stops() {
    // prost reads the top message at a budget of 100; each nested message or map entry under it
    // takes one, and skipping an unknown field needs one left: 100 levels of nested messages
    // decode, 101 do not, and an unknown field at level 100 is refused.
    for lists in [true, false] {
        for levels in [1, 2, 3, 50, 98, 99, 100, 101, 102, 1_000, 10_000] {
            for (leaf, limit) in [(&[][..], 100), (UNKNOWN_VARINT, 99)] {
                let expected = levels <= limit;
                // dynamic_metadata (field 4) and the deprecated ok_response.dynamic_metadata.
                let direct = nest(&struct_chain(&[0x22], levels, lists), leaf);
                let chain = struct_chain(&[0x1a, 0x1a], levels, lists);
                let in_ok = nest(&chain, leaf);
                for (what, bytes) in [("dynamic_metadata", direct), ("ok_response", in_ok)] {
                    let case = format!("{what}, {levels} levels, lists {lists}, leaf {leaf:?}");
                    assert_eq!(CheckResponse::decode(&bytes).is_ok(), expected, "{case}");
                    assert_eq!(prost(&bytes).is_some(), expected, "prost, {case}");
                    if levels <= 102 {
                        agree(&bytes);
                    }
                }
                // A Struct on its own, the top message, with as many levels under it.
                let alone = nest(&struct_chain(&[], levels, lists), leaf);
                let ours = super::super::structpb::decode_struct(&alone);
                let theirs = twin::Struct::decode(alone.as_slice()).ok();
                assert_eq!(ours.is_some(), expected, "Struct, {levels} levels");
                assert_eq!(ours, theirs.as_ref().map(struct_json), "Struct, {levels}");
            }
        }
    }
}
