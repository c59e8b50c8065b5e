//! Hostile answers: whatever bytes an auth server sends as its Check answer, the client gets an
//! answer, nothing reaches the upstream that the answer did not allow, and the VM lives on. Every
//! input goes through this filter and through Envoy's native ext_authz in the same Envoy, from
//! the raw HTTP/2 server of the harness ([`host_tests::raw_grpc`]); per input, both must give the
//! client the same status and the upstream the same (nothing, or the request), except where this
//! table says the module differs on purpose:
//!
//! | Input | Native 1.40 | This filter | Why |
//! |---|---|---|---|
//! | A known field under a wrong wire type (`wire-*`, some bit flips) | reads it as an unknown field: an empty, OK answer, 200 | refuses it: 403 (`status_on_error`) | the filter decodes as prost does; an answer of the wrong shape is no OK |
//! | Over-long (6+ byte) field key or length varint (`varint-long-key`, `varint-long-length`) | refuses: 403 | reads it as prost does: 200 when the rest says OK | prost takes varints up to 10 bytes; the answer is a well-formed OK otherwise |
//! | Some bit flips in a denial (`flip-deny-*`) | its own reading of the denial (401) | 403 (`status_on_error`) | prost refuses the bytes; both fail closed |
//! | Request headers past the connection manager's limit (10,000 headers, a 1 MB value) | 500 `ext_authz_invalid` | 431 | both fail closed, nothing upstream |
//! | A denial with 10,000 headers | sends them; the client cannot read the reply | 403 (`status_on_error`) | both fail closed; why the filter gives 403 here was not traced (filter code not changed) |
//! | A denial's HTTP status 99, 600, 65536 or -1 | sends it as it is (99, 65536, -1: a status line the client refuses) | 403 | a status outside 100-599 is no HTTP status |
//!
//! "Allowed by the answer" is judged by prost with Envoy's own types (`envoy-types`): the upstream
//! may see a request only if its answer decodes and carries an OK status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use host_tests::rng::Rng;
use std::sync::OnceLock;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::HeaderValueOption;
use envoy_types::pb::envoy::service::auth::v3::{CheckResponse, OkHttpResponse};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value as PbValue};
use host_tests::auth_server::{allow, allow_with, deny, set_header};
use host_tests::raw_bed::{RawBed, LISTENERS};
use host_tests::raw_grpc::{framed, grpc_headers, RawAnswer, Step};
use host_tests::Request;
use prost::Message;

/// The filters' timeout; slow answers outlast it.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How many requests are in flight at once.
const PARALLEL: usize = 4;

fn bed() -> &'static RawBed {
    static BED: OnceLock<RawBed> = OnceLock::new();
    BED.get_or_init(|| RawBed::start("hostile"))
}

/// One hostile input: the answer played, and whether it allows the request.
#[derive(Clone)]
struct Input {
    name: String,
    answer: RawAnswer,
    /// Whether the answer allows the request, as prost with Envoy's types reads it.
    allows: bool,
}

impl Input {
    /// A message behind a correct prefix with grpc-status 0; prost judges whether it allows.
    fn message(name: impl Into<String>, message: Vec<u8>) -> Self {
        let allows = prost_allows(&message);
        Self {
            name: name.into(),
            answer: RawAnswer::message(&message),
            allows,
        }
    }

    fn raw(name: impl Into<String>, answer: RawAnswer, allows: bool) -> Self {
        Self {
            name: name.into(),
            answer,
            allows,
        }
    }
}

fn prost_allows(message: &[u8]) -> bool {
    CheckResponse::decode(message).is_ok_and(|r| r.status.as_ref().map_or(0, |s| s.code) == 0)
}

/// What one listener did with an input.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    /// The client's status, or the client's error.
    status: Result<u16, String>,
    reached: bool,
}

/// Runs every input through both listeners, `PARALLEL` at a time; returns (wasm, native) per input.
fn run(family: &str, inputs: &[Input]) -> Vec<(Outcome, Outcome)> {
    let b = bed();
    let ports: Vec<u16> = LISTENERS.iter().map(|l| b.envoy.port(l)).collect();
    let jobs: Vec<(usize, usize, String)> = inputs
        .iter()
        .enumerate()
        .flat_map(|(i, input)| {
            LISTENERS.iter().enumerate().map(move |(l, listener)| {
                let case = format!("{family}-{i}-{listener}");
                b.raw.respond(&case, input.answer.clone());
                (i, l, case)
            })
        })
        .collect();
    let results: Vec<(usize, usize, Result<u16, String>, String)> = b.runtime.block_on(async {
        let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut tasks = Vec::new();
        for (i, l, case) in jobs {
            let port = ports[l];
            let limit = std::sync::Arc::clone(&limit);
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire().await;
                let request = Request::get("/hostile").case(&case);
                let status = host_tests::client::send(port, &request)
                    .await
                    .map(|r| r.status);
                (i, l, status, case)
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    let mut outcomes = vec![
        (
            Outcome {
                status: Err("not run".into()),
                reached: false
            },
            Outcome {
                status: Err("not run".into()),
                reached: false
            }
        );
        inputs.len()
    ];
    for (i, l, status, case) in results {
        let outcome = Outcome {
            status,
            reached: b.backend.arrivals(&case) > 0,
        };
        if l == 0 {
            outcomes[i].0 = outcome;
        } else {
            outcomes[i].1 = outcome;
        }
    }
    outcomes
}

/// A documented difference from native (the table at the top of the file).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Difference {
    /// Both fail closed (nothing upstream), with different replies: the filter answers
    /// `status_on_error` (403) or 431 where native uses its own reading of the answer.
    BothDeny,
    /// C++ protobuf and prost read the bytes differently; the filter decides as prost reads them.
    ProstReading,
}

fn classify(input: &Input, wasm: &Outcome, native: &Outcome) -> Option<Difference> {
    if wasm.status.is_ok() && !wasm.reached && !native.reached {
        Some(Difference::BothDeny)
    } else if wasm.reached == input.allows && native.reached != wasm.reached {
        Some(Difference::ProstReading)
    } else {
        None
    }
}

/// The checks every family shares: an answer for every request, nothing upstream that the
/// answer did not allow, native's outcome unless the difference is one of `allowed`, and a
/// live VM. Returns the documented differences seen, by input name.
fn check_family(
    family: &str,
    inputs: &[Input],
    allowed: &[Difference],
) -> Vec<(String, Difference)> {
    let outcomes = run(family, inputs);
    let mut failures = Vec::new();
    let mut differences = Vec::new();
    for (input, (wasm, native)) in inputs.iter().zip(&outcomes) {
        let difference = (wasm != native)
            .then(|| classify(input, wasm, native))
            .flatten()
            .filter(|d| allowed.contains(d));
        if wasm.status.is_err() {
            failures.push(format!("{}: wasm got no answer: {wasm:?}", input.name));
        }
        if wasm.reached && !input.allows {
            failures.push(format!(
                "{}: wasm let a request through that the answer did not allow",
                input.name
            ));
        }
        match difference {
            Some(d) => differences.push((input.name.clone(), d)),
            None if wasm != native => {
                failures.push(format!("{}: wasm {wasm:?}, native {native:?}", input.name))
            }
            None => {}
        }
    }
    assert_alive(family);
    eprintln!(
        "{family}: {} inputs, differences from native: {differences:?}",
        inputs.len()
    );
    assert!(
        failures.is_empty(),
        "{family}: {} of {} inputs failed:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
    differences
}

/// A normal allowed request on the wasm listener still gets 200, and the log has no trap.
fn assert_alive(family: &str) {
    let b = bed();
    let case = format!("{family}-alive");
    b.raw
        .respond(&case, RawAnswer::message(&allow().encode_to_vec()));
    let status = b
        .runtime
        .block_on(host_tests::client::send(
            b.envoy.port("wasm"),
            &Request::get("/alive").case(&case),
        ))
        .map(|r| r.status);
    assert_eq!(
        status,
        Ok(200),
        "{family}: the VM is not serving afterwards"
    );
    assert_eq!(
        b.backend.arrivals(&case),
        1,
        "{family}: the allowed request did not arrive"
    );
    let log = b.envoy.log();
    let traps: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("Function: proxy_on_") || l.contains("Uncaught") || l.contains("panicked")
        })
        .collect();
    assert!(
        traps.is_empty(),
        "{family}: the VM trapped:\n{}",
        traps.join("\n")
    );
}

/// The harness's generator, its seed spread as this file always spread it (the same inputs on
/// every run).
fn seeded(seed: u64) -> Rng {
    Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

// Protobuf wire format by hand, for what prost will not write.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn key(field: u32, wire_type: u8) -> Vec<u8> {
    varint(u64::from(field) << 3 | u64::from(wire_type))
}

fn ld(field: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = key(field, 2);
    out.extend(varint(bytes.len() as u64));
    out.extend_from_slice(bytes);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Valid answers to mutate: an allow with changes, a denial with a body, an allow with metadata.
fn valid_answers() -> Vec<(&'static str, Vec<u8>)> {
    // One field: a map of several would encode in a different order on each run.
    let mut fields = std::collections::HashMap::new();
    fields.insert(
        "user".to_owned(),
        PbValue {
            kind: Some(Kind::StringValue("alice".into())),
        },
    );
    let ok = OkHttpResponse {
        headers: vec![set_header("x-user", "alice")],
        headers_to_remove: vec!["x-drop".into()],
        ..Default::default()
    };
    let mut with_metadata = allow();
    with_metadata.dynamic_metadata = Some(Struct { fields });
    vec![
        ("allow", allow_with(ok).encode_to_vec()),
        (
            "deny",
            deny(401, vec![set_header("x-why", "no")], "go away").encode_to_vec(),
        ),
        ("metadata", with_metadata.encode_to_vec()),
    ]
}

#[test]
fn seeded_random_bytes() {
    let mut rng = seeded(15);
    let mut inputs = Vec::new();
    for i in 0..48 {
        let len = rng.below(200);
        inputs.push(Input::message(
            format!("random-{i}"),
            random_bytes(&mut rng, len),
        ));
    }
    for i in 0..16 {
        // Random DATA with no length prefix of its own.
        let len = 1 + rng.below(64);
        inputs.push(Input::raw(
            format!("random-unframed-{i}"),
            RawAnswer::data(random_bytes(&mut rng, len), "0"),
            false,
        ));
    }
    check_family("random", &inputs, &[]);
}

#[test]
fn bit_flips_of_valid_answers() {
    let mut rng = seeded(16);
    let mut inputs = Vec::new();
    for (name, answer) in valid_answers() {
        for i in 0..40 {
            let mut flipped = answer.clone();
            let bit = rng.below(answer.len() * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
            inputs.push(Input::message(format!("flip-{name}-{i}-bit{bit}"), flipped));
        }
    }
    check_family(
        "flips",
        &inputs,
        &[Difference::BothDeny, Difference::ProstReading],
    );
}

#[test]
fn truncations_at_every_byte() {
    let mut inputs = Vec::new();
    for (name, answer) in valid_answers() {
        // Every byte offset, which covers every field boundary, nested ones included.
        for cut in 0..answer.len() {
            inputs.push(Input::message(
                format!("cut-{name}-{cut}"),
                answer[..cut].to_vec(),
            ));
        }
        // The prefix promises the whole message; the DATA stops short.
        let whole = framed(&answer);
        inputs.push(Input::raw(
            format!("cut-frame-{name}"),
            RawAnswer::data(whole[..whole.len() / 2].to_vec(), "0"),
            false,
        ));
    }
    check_family("cuts", &inputs, &[]);
}

#[test]
fn wrong_wire_types_varints_and_lengths() {
    let mut inputs = Vec::new();
    let status_ok = ld(1, &[]);
    // Each top-level field of CheckResponse under every other wire type.
    for field in 1..=4u32 {
        for wire_type in [0u8, 1, 3, 4, 5, 6, 7] {
            let value: Vec<u8> = match wire_type {
                0 => varint(1),
                1 => vec![0; 8],
                5 => vec![0; 4],
                _ => Vec::new(),
            };
            let message = cat(&[&key(field, wire_type), &value]);
            inputs.push(Input::message(format!("wire-{field}-{wire_type}"), message));
        }
    }
    // status.code as a length-delimited field; the denied status as a fixed64.
    inputs.push(Input::message("wire-code-ld", ld(1, &ld(1, b"x"))));
    inputs.push(Input::message(
        "wire-http-status-fixed64",
        cat(&[
            &ld(1, &cat(&[&key(1, 0), &varint(7)])),
            &ld(2, &cat(&[&key(1, 1), &[0; 8]])),
        ]),
    ));
    // Over-long varints: eleven bytes, ten with overflow, and one that never ends.
    let eleven = [
        0x80u8, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
    ];
    inputs.push(Input::message(
        "varint-11-bytes",
        cat(&[&ld(1, &cat(&[&key(1, 0), &eleven]))]),
    ));
    let overflow = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    inputs.push(Input::message(
        "varint-overflow",
        cat(&[&ld(1, &cat(&[&key(1, 0), &overflow]))]),
    ));
    inputs.push(Input::message(
        "varint-unterminated",
        cat(&[&status_ok, &[0x08, 0x80, 0x80]]),
    ));
    inputs.push(Input::message(
        "varint-long-key",
        cat(&[&[0x8a, 0x80, 0x80, 0x80, 0x80, 0x00], &[0]]),
    ));
    inputs.push(Input::message(
        "varint-long-length",
        cat(&[&[0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]]),
    ));
    // Lengths past the end, at the top and nested.
    inputs.push(Input::message(
        "length-past-end",
        cat(&[&key(1, 2), &varint(50), b"abc"]),
    ));
    inputs.push(Input::message(
        "length-huge",
        cat(&[&key(3, 2), &varint(u64::from(u32::MAX))]),
    ));
    inputs.push(Input::message(
        "length-nested-past-end",
        cat(&[
            &status_ok,
            &key(3, 2),
            &varint(6),
            &key(2, 2),
            &varint(40),
            b"abcd",
        ]),
    ));
    inputs.push(Input::message(
        "field-zero",
        cat(&[&[0x02, 0x00], &status_ok]),
    ));
    let differences = check_family("wire", &inputs, &[Difference::ProstReading]);
    // C++ keeps a known field under a wrong wire type as an unknown one (and so reads an empty,
    // OK answer); prost refuses it, and so does the filter.
    assert!(
        differences
            .iter()
            .any(|(name, _)| name.starts_with("wire-")),
        "expected native to read wrong wire types as unknown fields"
    );
}

#[test]
fn grpc_framing_and_status() {
    let ok = allow().encode_to_vec();
    let no = deny(403, Vec::new(), "no").encode_to_vec();
    let mut wrong_long = framed(&ok);
    wrong_long[4] = wrong_long[4].wrapping_add(3);
    let mut wrong_short = framed(&ok);
    wrong_short[4] = 0;
    let mut compressed = framed(&ok);
    compressed[0] = 1;
    let two = |first: &[u8], second: &[u8]| cat(&[&framed(first), &framed(second)]);
    let half = framed(&ok);
    let mut inputs = vec![
        Input::raw("no-prefix", RawAnswer::data(ok.clone(), "0"), false),
        Input::raw("prefix-too-long", RawAnswer::data(wrong_long, "0"), false),
        Input::raw("prefix-too-short", RawAnswer::data(wrong_short, "0"), true),
        Input::raw("compressed-flag", RawAnswer::data(compressed, "0"), false),
        Input::raw(
            "two-messages-allow-deny",
            RawAnswer::data(two(&ok, &no), "0"),
            true,
        ),
        Input::raw(
            "two-messages-deny-allow",
            RawAnswer::data(two(&no, &ok), "0"),
            true,
        ),
        Input::raw("empty-data", RawAnswer::data(Vec::new(), "0"), false),
        Input::raw(
            "no-data",
            RawAnswer(vec![
                grpc_headers(false),
                Step::Trailers(vec![("grpc-status".into(), b"0".to_vec())]),
            ]),
            false,
        ),
        Input::raw(
            "split-across-frames",
            RawAnswer(vec![
                grpc_headers(false),
                Step::Data {
                    bytes: half[..3].to_vec(),
                    end: false,
                },
                Step::Data {
                    bytes: half[3..].to_vec(),
                    end: false,
                },
                Step::Trailers(vec![("grpc-status".into(), b"0".to_vec())]),
            ]),
            true,
        ),
        Input::raw(
            "slow-partial",
            RawAnswer(vec![
                grpc_headers(false),
                Step::Data {
                    bytes: half[..4].to_vec(),
                    end: false,
                },
                Step::Sleep(TIMEOUT * 3),
                Step::Data {
                    bytes: half[4..].to_vec(),
                    end: false,
                },
                Step::Trailers(vec![("grpc-status".into(), b"0".to_vec())]),
            ]),
            false,
        ),
        Input::raw(
            "headers-then-silence",
            RawAnswer(vec![grpc_headers(false), Step::Sleep(TIMEOUT * 3)]),
            false,
        ),
        Input::raw(
            "reset-mid-answer",
            RawAnswer(vec![
                grpc_headers(false),
                Step::Data {
                    bytes: half[..4].to_vec(),
                    end: false,
                },
                Step::Reset,
            ]),
            false,
        ),
        Input::raw("reset-at-once", RawAnswer(vec![Step::Reset]), false),
        Input::raw(
            "data-ends-without-trailers",
            RawAnswer(vec![
                grpc_headers(false),
                Step::Data {
                    bytes: framed(&ok),
                    end: true,
                },
            ]),
            false,
        ),
        Input::raw(
            "http-500",
            RawAnswer(vec![Step::Headers {
                status: 500,
                headers: Vec::new(),
                end: true,
            }]),
            false,
        ),
    ];
    for status in [b"0".as_slice(), b"7", b"14", b"16"] {
        inputs.push(Input::raw(
            format!("trailers-only-{}", String::from_utf8_lossy(status)),
            RawAnswer::trailers_only(status, "scripted"),
            false,
        ));
    }
    for status in ["99", "600", "65536", "-1", "abc", ""] {
        inputs.push(Input::raw(
            format!("grpc-status-{status:?}"),
            RawAnswer::data(framed(&ok), status),
            false,
        ));
    }
    check_family("framing", &inputs, &[]);
}

/// `depth` Structs nested through `Value.struct_value`, innermost first, as Struct bytes.
fn nested_structs(depth: usize) -> Vec<u8> {
    let mut inner = Vec::new();
    for _ in 1..depth {
        let value = ld(5, &inner);
        inner = ld(1, &cat(&[&ld(1, b"a"), &ld(2, &value)]));
    }
    inner
}

/// A Struct holding `depth` ListValues nested through `Value.list_value`.
fn nested_lists(depth: usize) -> Vec<u8> {
    let mut list = Vec::new();
    for _ in 1..depth {
        list = ld(1, &ld(6, &list));
    }
    ld(1, &cat(&[&ld(1, b"a"), &ld(2, &ld(6, &list))]))
}

/// An unknown field 99 holding `depth` groups, one inside the other.
fn nested_groups(depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..depth {
        out.extend(key(99, 3));
    }
    for _ in 0..depth {
        out.extend(key(99, 4));
    }
    out
}

#[test]
fn deep_nesting() {
    let status_ok = ld(1, &[]);
    let mut inputs = Vec::new();
    for depth in [100, 101, 1_000, 10_000] {
        let structs = nested_structs(depth);
        let lists = nested_lists(depth);
        inputs.push(Input::message(
            format!("structs-{depth}"),
            cat(&[&status_ok, &ld(4, &structs)]),
        ));
        inputs.push(Input::message(
            format!("lists-{depth}"),
            cat(&[&status_ok, &ld(4, &lists)]),
        ));
        inputs.push(Input::message(
            format!("ok-response-structs-{depth}"),
            cat(&[&status_ok, &ld(3, &ld(3, &structs))]),
        ));
        inputs.push(Input::message(
            format!("denied-structs-{depth}"),
            cat(&[&ld(1, &cat(&[&key(1, 0), &varint(7)])), &ld(4, &structs)]),
        ));
        inputs.push(Input::message(
            format!("groups-{depth}"),
            cat(&[&status_ok, &nested_groups(depth)]),
        ));
    }
    check_family("deep", &inputs, &[]);
}

#[test]
fn huge_answers() {
    let many: Vec<HeaderValueOption> = (0..10_000)
        .map(|i| set_header(&format!("x-h{i}"), "v"))
        .collect();
    let big_value = "v".repeat(1024 * 1024);
    let inputs = vec![
        Input::message(
            "10000-headers-allow",
            allow_with(OkHttpResponse {
                headers: many.clone(),
                ..Default::default()
            })
            .encode_to_vec(),
        ),
        Input::message("10000-headers-deny", deny(403, many, "").encode_to_vec()),
        Input::message(
            "1mb-header-value",
            allow_with(OkHttpResponse {
                headers: vec![set_header("x-big", &big_value)],
                ..Default::default()
            })
            .encode_to_vec(),
        ),
        Input::message(
            "5mb-denial-body",
            deny(403, Vec::new(), &"d".repeat(5 * 1024 * 1024)).encode_to_vec(),
        ),
    ];
    let differences = check_family("huge", &inputs, &[Difference::BothDeny]);
    // Both answer 500 (ext_authz_invalid) for request headers past the limit
    // (`max_request_headers_kb`); native sends a 10,000-header denial the client cannot read, the
    // filter answers 403.
    assert_eq!(differences.len(), 1, "{differences:?}");
}

/// A HeaderValueOption with raw bytes for key and value (prost only writes valid UTF-8).
fn raw_header(key_bytes: &[u8], value: &[u8]) -> Vec<u8> {
    ld(1, &cat(&[&ld(1, key_bytes), &ld(2, value)]))
}

#[test]
fn invalid_utf8() {
    let status_ok = ld(1, &[]);
    let denied = ld(1, &cat(&[&key(1, 0), &varint(7)]));
    let bad = b"x-\xff\xfe";
    let inputs = vec![
        Input::message(
            "utf8-allow-key",
            cat(&[&status_ok, &ld(3, &ld(2, &raw_header(bad, b"v")))]),
        ),
        Input::message(
            "utf8-allow-value",
            cat(&[&status_ok, &ld(3, &ld(2, &raw_header(b"x-v", b"\xc3\x28")))]),
        ),
        Input::message(
            "utf8-deny-key",
            cat(&[&denied, &ld(2, &ld(2, &raw_header(bad, b"v")))]),
        ),
        Input::message(
            "utf8-deny-value",
            cat(&[&denied, &ld(2, &ld(2, &raw_header(b"x-v", b"\xc3\x28")))]),
        ),
        Input::message(
            "utf8-deny-body",
            cat(&[&denied, &ld(2, &ld(3, b"\xff body"))]),
        ),
        Input::message("utf8-remove", cat(&[&status_ok, &ld(3, &ld(5, bad))])),
        Input::message(
            "utf8-metadata-key",
            cat(&[
                &status_ok,
                &ld(4, &ld(1, &cat(&[&ld(1, bad), &ld(2, &ld(4, b"v"))]))),
            ]),
        ),
        Input::message(
            "utf8-status-message",
            cat(&[&ld(1, &cat(&[&key(1, 0), &varint(0), &ld(2, bad)]))]),
        ),
    ];
    check_family("utf8", &inputs, &[]);
}

#[test]
fn status_codes() {
    let mut inputs = Vec::new();
    for code in [0i64, 99, 600, 65536, -1, 200, 302] {
        // The denial's HTTP status, as an int32 varint (negative: ten bytes).
        let http_status = ld(1, &cat(&[&key(1, 0), &varint(code as u64)]));
        let denied = ld(1, &cat(&[&key(1, 0), &varint(7)]));
        inputs.push(Input::message(
            format!("http-status-{code}"),
            cat(&[&denied, &ld(2, &cat(&[&http_status, &ld(3, b"denied")]))]),
        ));
    }
    for code in [99i64, 600, 65536, -1, 1, 16] {
        // The answer's rpc status code, with an ok_response beside it.
        inputs.push(Input::message(
            format!("rpc-code-{code}"),
            cat(&[
                &ld(1, &cat(&[&key(1, 0), &varint(code as u64)])),
                &ld(3, &[]),
            ]),
        ));
    }
    let differences = check_family("codes", &inputs, &[Difference::BothDeny]);
    // Native sends a denial's status as it is, including 99, 600, 65536 and -1 (a status line
    // most clients refuse); the filter answers 403 (status_on_error) for a status outside 100-599.
    let names: Vec<&str> = differences.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "http-status-99",
            "http-status-600",
            "http-status-65536",
            "http-status--1"
        ]
    );
}
