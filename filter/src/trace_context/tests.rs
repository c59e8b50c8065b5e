#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const SPAN: u64 = 0x00f0_67aa_0ba9_02b7;
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn child_of(headers: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let headers: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    child(&headers, || SPAN)
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
        .collect()
}

fn traceparent(value: &str) -> Vec<(&'static str, String)> {
    child_of(&[("traceparent", value), ("tracestate", "congo=t61rcWkgMzE")])
}

#[test]
fn a_valid_traceparent_gets_a_child_with_the_same_trace_and_flags() {
    assert_eq!(
        traceparent(&format!("00-{TRACE}-b7ad6b7169203331-01")),
        [
            ("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01")),
            ("tracestate", "congo=t61rcWkgMzE".to_owned())
        ]
    );
    // Not sampled stays not sampled.
    assert_eq!(
        traceparent(&format!("00-{TRACE}-b7ad6b7169203331-00"))[0].1,
        format!("00-{TRACE}-00f067aa0ba902b7-00")
    );
    // A later version with more fields: read as version 00, written as 00.
    assert_eq!(
        traceparent(&format!("01-{TRACE}-b7ad6b7169203331-01-extra"))[0].1,
        format!("00-{TRACE}-00f067aa0ba902b7-01")
    );
}

#[test]
fn a_malformed_traceparent_goes_nowhere_nor_does_its_tracestate() {
    let bad = [
        String::new(),
        "garbage".to_owned(),
        format!("00-{TRACE}-b7ad6b7169203331-01-"),
        format!("00-{TRACE}-b7ad6b7169203331-1"),
        format!("ff-{TRACE}-b7ad6b7169203331-01"),
        format!("00-{}-b7ad6b7169203331-01", "0".repeat(32)),
        format!("00-{TRACE}-0000000000000000-01"),
        format!("00-{}-b7ad6b7169203331-01", TRACE.to_uppercase()),
        format!("00_{TRACE}-b7ad6b7169203331-01"),
        format!("0g-{TRACE}-b7ad6b7169203331-01"),
        format!("00-{TRACE}-b7ad6b716920333\u{e9}-01"),
        format!("01-{TRACE}-b7ad6b7169203331-01x"),
    ];
    for value in bad {
        assert_eq!(traceparent(&value), [], "{value:?}");
    }
    // Twice is not one context.
    let valid = format!("00-{TRACE}-b7ad6b7169203331-01");
    assert_eq!(
        child_of(&[("traceparent", &valid), ("traceparent", &valid)]),
        []
    );
    // A tracestate that is not visible ASCII is dropped; the traceparent still goes.
    assert_eq!(
        child_of(&[("traceparent", &valid), ("tracestate", "a=\u{e9}")]).len(),
        1
    );
}

#[test]
fn b3_headers_get_a_child_with_the_request_span_as_parent() {
    let span = "e457b5a2e4d86bd1";
    assert_eq!(
        child_of(&[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", span),
            ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
            ("x-b3-sampled", "1"),
            ("x-b3-flags", "1"),
        ]),
        [
            ("x-b3-traceid", TRACE.to_owned()),
            ("x-b3-spanid", "00f067aa0ba902b7".to_owned()),
            ("x-b3-parentspanid", span.to_owned()),
            ("x-b3-sampled", "1".to_owned()),
            ("x-b3-flags", "1".to_owned()),
        ]
    );
    // A 64-bit trace id, `true` for sampled.
    assert_eq!(
        child_of(&[
            ("x-b3-traceid", "a3ce929d0e0e4736"),
            ("x-b3-spanid", span),
            ("x-b3-sampled", "true")
        ])
        .last()
        .cloned(),
        Some(("x-b3-sampled", "1".to_owned()))
    );
    // Only a sampling decision: handed on as it is.
    assert_eq!(
        child_of(&[("x-b3-sampled", "0")]),
        [("x-b3-sampled", "0".to_owned())]
    );
}

#[test]
fn malformed_b3_headers_go_nowhere() {
    let span = "e457b5a2e4d86bd1";
    let bad: [&[(&str, &str)]; 7] = [
        &[("x-b3-traceid", TRACE)],
        &[("x-b3-spanid", span)],
        &[("x-b3-traceid", "abc"), ("x-b3-spanid", span)],
        &[("x-b3-traceid", TRACE), ("x-b3-spanid", "0000000000000000")],
        &[("x-b3-traceid", TRACE), ("x-b3-spanid", "E457B5A2E4D86BD1")],
        &[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", span),
            ("x-b3-sampled", "yes"),
        ],
        &[("x-b3-flags", "2")],
    ];
    for headers in bad {
        assert_eq!(child_of(headers), [], "{headers:?}");
    }
}

#[test]
fn single_b3_gets_a_child() {
    let span = "e457b5a2e4d86bd1";
    let b3 = |v: &str| child_of(&[("b3", v)]);
    assert_eq!(
        b3(&format!("{TRACE}-{span}-1-05e3ac9a4f6e3b90")),
        [("b3", format!("{TRACE}-00f067aa0ba902b7-1-{span}"))]
    );
    assert_eq!(
        b3(&format!("{TRACE}-{span}-d")),
        [("b3", format!("{TRACE}-00f067aa0ba902b7-d-{span}"))]
    );
    assert_eq!(
        b3(&format!("{TRACE}-{span}")),
        [("b3", format!("{TRACE}-00f067aa0ba902b7"))]
    );
    assert_eq!(b3("0"), [("b3", "0".to_owned())]);
    for bad in [
        String::new(),
        "2".to_owned(),
        TRACE.to_owned(),
        format!("{TRACE}-{span}-x"),
        format!("{TRACE}-{span}-1-zz"),
        format!("{TRACE}-{span}-1-{span}-more"),
        format!("{TRACE}--1"),
    ] {
        assert_eq!(b3(&bad), [], "{bad:?}");
    }
}

#[test]
fn no_trace_headers_no_child() {
    assert_eq!(child_of(&[("x-other", "1"), ("tracestate", "a=b")]), []);
}

#[test]
fn span_ids_are_fresh_and_never_zero() {
    let ids: std::collections::HashSet<u64> = (0..1000).map(|_| new_span_id()).collect();
    assert_eq!(ids.len(), 1000);
    assert!(!ids.contains(&0));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..3000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 80) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|i| b"0123456789abcdef-\xff"[((state >> (i % 60)) % 18) as usize])
            .collect();
        for name in NAMES {
            let _ = child(&[(name.as_bytes(), &bytes)], || SPAN);
        }
    }
}

#[test]
fn the_switch_is_on_unless_turned_off() {
    let config = |extra: &str| {
        let json =
            format!(r#"{{"grpc_service": {{"envoy_grpc": {{"cluster_name": "a"}}}}{extra}}}"#);
        crate::config::Config::parse(json.as_bytes()).unwrap()
    };
    assert!(config("").propagate_trace_context);
    assert!(!config(r#", "propagate_trace_context": false"#).propagate_trace_context);
    assert!(!config(r#", "propagateTraceContext": false"#).propagate_trace_context);
}

#[test]
fn span_ids_are_written_as_the_formatter_writes_them() {
    for n in [
        0,
        1,
        0xf,
        0x10,
        0xdead_beef,
        u64::MAX,
        0x0123_4567_89ab_cdef,
    ] {
        assert_eq!(hex16(n), format!("{n:016x}").into_bytes(), "{n:x}");
    }
}
