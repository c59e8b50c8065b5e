#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::check_request::{HeaderSelection, RequestBody};
use crate::config::{Config, Service};
use crate::route::matcher::StringMatchKind;

fn service(extra: &str) -> HttpService {
    let json = format!(
        r#"{{"http_service": {{"server_uri": {{"uri": "http://authz:8000", "cluster": "authz", "timeout": "1s"}},
            "path_prefix": "/check"{extra}}}}}"#
    );
    match Config::parse(json.as_bytes()).unwrap().service {
        Service::Http(http) => http,
        Service::Grpc(_) | Service::Steps(_) => panic!("expected an http_service"),
    }
}

const REQUEST: [(&[u8], &[u8]); 7] = [
    (b":method", b"POST"),
    (b":path", b"/api/pets/1?x=1"),
    (b":authority", b"pets.example"),
    (b"authorization", b"Bearer t"),
    (b"x-api-key", b"k1"),
    (b"x-other", b"o"),
    (b"content-length", b"99"),
];

#[test]
fn the_request_carries_method_prefixed_path_and_allowed_headers() {
    let http = service(
        r#", "authorization_request": {"allowed_headers": {"patterns": [{"exact": "x-api-key"}]},
              "headers_to_add": [{"key": "x-added", "value": "yes"}]}"#,
    );
    let body = RequestBody {
        bytes: b"12345",
        buffered: 5,
        pack_as_bytes: false,
    };
    let headers = request_headers(&http, &HeaderSelection::default(), &REQUEST, Some(body));
    let get = |name: &str| value_of(&headers, name);
    assert_eq!(get(":method").as_deref(), Some("POST"));
    assert_eq!(get(":path").as_deref(), Some("/check/api/pets/1?x=1"));
    assert_eq!(get(":authority").as_deref(), Some("pets.example"));
    assert_eq!(
        get("authorization").as_deref(),
        Some("Bearer t"),
        "always sent"
    );
    assert_eq!(get("x-api-key").as_deref(), Some("k1"));
    assert_eq!(get("x-other"), None, "not allowed");
    assert_eq!(
        get("content-length").as_deref(),
        Some("5"),
        "the body actually sent"
    );
    assert_eq!(get("x-added").as_deref(), Some("yes"));
    assert_eq!(get("x-envoy-auth-partial-body").as_deref(), Some("false"));
}

fn value_of(headers: &[(String, Vec<u8>)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

#[test]
fn the_selection_is_legacy_else_top_level_else_only_the_always_sent() {
    let request: &[(&[u8], &[u8])] = &[
        (b":method", b"GET"),
        (b":path", b"/"),
        (b":authority", b"a"),
        (b"authorization", b"t"),
        (b"x-a", b"1"),
        (b"x-a", b"2"),
        (b"x-b", b"b"),
        (b"x-envoy-auth-partial-body", b"spoofed"),
    ];
    let exact = |name: &str| StringMatch {
        kind: StringMatchKind::Exact(name.to_owned()),
        ignore_case: false,
    };
    let top = HeaderSelection {
        allowed: Some(vec![exact("x-b")]),
        disallowed: vec![exact("authorization")],
        raw: false,
    };
    let unset = service("");
    let headers = request_headers(&unset, &HeaderSelection::default(), request, None);
    assert_eq!(value_of(&headers, "authorization").as_deref(), Some("t"));
    assert_eq!(value_of(&headers, "x-a"), None);
    assert_eq!(value_of(&headers, "x-envoy-auth-partial-body"), None);
    let headers = request_headers(&unset, &top, request, None);
    assert_eq!(value_of(&headers, "authorization"), None, "disallowed wins");
    assert_eq!(value_of(&headers, "x-b").as_deref(), Some("b"));
    assert_eq!(value_of(&headers, "x-a"), None);
    let legacy = service(
        r#", "authorization_request": {"allowed_headers": {"patterns": [{"prefix": "x-a"}]}}"#,
    );
    let headers = request_headers(&legacy, &top, request, None);
    assert_eq!(value_of(&headers, "x-a").as_deref(), Some("1,2"), "joined");
    assert_eq!(value_of(&headers, "x-b"), None, "the legacy list wins");
    assert_eq!(value_of(&headers, "authorization"), None);
    assert_eq!(value_of(&headers, ":path").as_deref(), Some("/check/"));
}

fn answer(
    status: &str,
    extra: &[(&'static [u8], &'static [u8])],
) -> Vec<(&'static [u8], &'static [u8])> {
    let status: &'static str = Box::leak(status.to_owned().into_boxed_str());
    let mut headers: Vec<(&[u8], &[u8])> = vec![(b":status", status.as_bytes())];
    headers.extend_from_slice(extra);
    headers
}

#[test]
fn ok_copies_the_allowed_headers() {
    let http = service(
        r#", "authorization_response": {
            "allowed_upstream_headers": {"patterns": [{"prefix": "x-user"}]},
            "allowed_upstream_headers_to_append": {"patterns": [{"exact": "x-trace"}]},
            "allowed_client_headers_on_success": {"patterns": [{"exact": "x-session"}]}}"#,
    );
    let headers = answer(
        "200",
        &[
            (b"x-user-id", b"alice"),
            (b"x-trace", b"authz"),
            (b"x-session", b"s1"),
            (b"x-secret", b"no"),
            (
                b"x-envoy-auth-headers-to-remove",
                b"authorization, :path , host,x-drop",
            ),
        ],
    );
    let Decision::Allow(allow) = decision(&http, &headers, Vec::new()) else {
        panic!("expected an allow")
    };
    let names: Vec<(&str, HeaderAction)> = allow
        .request_headers
        .iter()
        .map(|m| (m.name.as_str(), m.action))
        .collect();
    assert_eq!(
        names,
        [
            ("x-user-id", HeaderAction::Set),
            ("x-trace", HeaderAction::Add)
        ]
    );
    assert_eq!(allow.headers_to_remove, ["authorization", "x-drop"]);
    let response: Vec<&str> = allow
        .response_headers
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(response, ["x-session"]);
}

#[test]
fn other_statuses_deny_with_the_answer() {
    let http = service("");
    let headers = answer(
        "401",
        &[
            (b"x-server", b"pythonauth"),
            (b"content-length", b"3"),
            (b"www-authenticate", b"Basic"),
        ],
    );
    let Decision::Deny(reply) = decision(&http, &headers, b"no!".to_vec()) else {
        panic!("expected a denial")
    };
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, b"no!");
    let names: Vec<&str> = reply.headers.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["x-server", "www-authenticate"],
        "all but framing headers, when unset"
    );

    let only = service(
        r#", "authorization_response": {"allowed_client_headers": {"patterns": [{"exact": "www-authenticate"}]}}"#,
    );
    let Decision::Deny(reply) = decision(&only, &headers, Vec::new()) else {
        panic!("expected a denial")
    };
    let names: Vec<&str> = reply.headers.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["www-authenticate"]);
}

#[test]
fn server_errors_and_bad_answers_are_errors() {
    let http = service("");
    assert_eq!(
        decision(&http, &answer("503", &[]), Vec::new()),
        Decision::Error(CheckError::ServerError(503))
    );
    assert!(
        matches!(
            decision(&http, &[], Vec::new()),
            Decision::Error(CheckError::HttpCall)
        ),
        "a failed call has no headers"
    );
    assert!(matches!(
        decision(&http, &answer("abc", &[]), Vec::new()),
        Decision::Error(CheckError::Undecodable(_))
    ));
    assert!(
        matches!(
            decision(&http, &answer("200", &[(b"x-bad", b"a\r\nb")]), Vec::new()),
            Decision::Allow(_)
        ),
        "a header not allowed is not looked at"
    );
}
