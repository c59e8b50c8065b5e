//! Named differential cases: each request, with each auth server answer, through native
//! ext_authz and through this filter in the same Envoy; the client, the upstream, the access log's
//! response code details and the CheckRequest must match. One case per field and per odd input,
//! so that a difference names what differs. (`differential.rs` adds random ones.)

use envoy_types::pb::envoy::config::core::v3::QueryParameter;
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use host_tests::auth_server::{allow, allow_with, deny, header, set_header};
use host_tests::envoy::{native_ext_authz, wasm_filter, AUTH_CLUSTER};
use host_tests::{compare, AuthAction, Harness, Listener, Request};
use serde_json::json;

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        let config = json!({"grpc_service": {"envoy_grpc": {"cluster_name": AUTH_CLUSTER}, "timeout": "5s"}});
        vec![
            Listener::new("native", vec![native_ext_authz(&config)]),
            Listener::new("wasm", vec![wasm_filter(&config)]),
        ]
    })
}

fn ok(ok: OkHttpResponse) -> AuthAction {
    AuthAction::respond(allow_with(ok))
}

fn status_only(code: i32) -> AuthAction {
    AuthAction::respond(CheckResponse {
        status: Some(RpcStatus {
            code,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn error_response(status: Option<i32>, body: &str) -> AuthAction {
    AuthAction::respond(CheckResponse {
        status: Some(RpcStatus {
            code: 13,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::ErrorResponse(DeniedHttpResponse {
            status: status.map(|code| HttpStatus { code }),
            headers: vec![set_header("x-error", "1")],
            body: body.into(),
        })),
        ..Default::default()
    })
}

fn query(pairs: &[(&str, &str)]) -> Vec<QueryParameter> {
    pairs
        .iter()
        .map(|(k, v)| QueryParameter {
            key: (*k).into(),
            value: (*v).into(),
        })
        .collect()
}

/// Every case: a name, the request, the auth server's answer.
fn cases() -> Vec<(&'static str, Request, AuthAction)> {
    let get = || Request::get("/case");
    let mut cases: Vec<(&'static str, Request, AuthAction)> = Vec::new();
    // Every method, over HTTP/1.1 and HTTP/2.
    for (name, method) in [
        ("method GET", "GET"),
        ("method HEAD", "HEAD"),
        ("method POST", "POST"),
        ("method PUT", "PUT"),
        ("method DELETE", "DELETE"),
        ("method PATCH", "PATCH"),
        ("method OPTIONS", "OPTIONS"),
        ("method TRACE", "TRACE"),
    ] {
        cases.push((
            name,
            Request::new(method, "/m").body(if method == "GET" || method == "HEAD" {
                ""
            } else {
                "b"
            }),
            AuthAction::respond(allow()),
        ));
    }
    for (name, method) in [
        ("h2 GET", "GET"),
        ("h2 POST", "POST"),
        ("h2 DELETE", "DELETE"),
        ("h2 HEAD", "HEAD"),
    ] {
        cases.push((
            name,
            Request::new(method, "/m").http2(),
            AuthAction::respond(allow()),
        ));
    }
    // Every OkHttpResponse field.
    cases.push((
        "ok headers set",
        get().header("x-a", "client"),
        ok(OkHttpResponse {
            headers: vec![set_header("x-a", "server")],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers append existing",
        get().header("x-a", "client"),
        ok(OkHttpResponse {
            headers: vec![header("x-a", "server", 0, Some(true))],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers append absent",
        get(),
        ok(OkHttpResponse {
            headers: vec![header("x-a", "server", 0, Some(true))],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers append to repeated",
        get().header("x-a", "1").header("x-a", "2"),
        ok(OkHttpResponse {
            headers: vec![header("x-a", "3", 0, Some(true))],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers append cookie",
        get().header("cookie", "a=1"),
        ok(OkHttpResponse {
            headers: vec![header("cookie", "b=2", 0, Some(true))],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers append false",
        get().header("x-a", "client"),
        ok(OkHttpResponse {
            headers: vec![header("x-a", "server", 0, Some(false))],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers default action",
        get().header("x-a", "client"),
        ok(OkHttpResponse {
            headers: vec![header("x-a", "server", 0, None)],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers overwrite or add",
        get(),
        ok(OkHttpResponse {
            headers: vec![header("x-a", "server", 2, None)],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers set then append",
        get(),
        ok(OkHttpResponse {
            headers: vec![header("x-a", "2", 0, Some(true)), set_header("x-a", "1")],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers empty value",
        get().header("x-a", "client"),
        ok(OkHttpResponse {
            headers: vec![set_header("x-a", "")],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers upper-case name",
        get(),
        ok(OkHttpResponse {
            headers: vec![set_header("X-Upper", "v")],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers_to_remove",
        get().header("x-a", "1").header("authorization", "t"),
        ok(OkHttpResponse {
            headers_to_remove: vec!["x-a".into(), "authorization".into()],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok headers_to_remove pseudo and host",
        get(),
        ok(OkHttpResponse {
            headers_to_remove: vec![
                ":path".into(),
                ":method".into(),
                "host".into(),
                ":authority".into(),
            ],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok response headers set",
        get(),
        ok(OkHttpResponse {
            response_headers_to_add: vec![set_header("x-r", "1")],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok response headers default adds",
        get(),
        ok(OkHttpResponse {
            response_headers_to_add: vec![header("x-backend", "server", 0, None)],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok response headers append",
        get(),
        ok(OkHttpResponse {
            response_headers_to_add: vec![header("x-backend", "server", 0, Some(true))],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok response headers overwrite",
        get(),
        ok(OkHttpResponse {
            response_headers_to_add: vec![header("content-type", "application/x", 0, Some(false))],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok response headers set-cookie twice",
        get(),
        ok(OkHttpResponse {
            response_headers_to_add: vec![
                header("set-cookie", "a=1", 0, None),
                header("set-cookie", "b=2", 0, None),
            ],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok query set",
        Request::get("/q?b=2&a=1"),
        ok(OkHttpResponse {
            query_parameters_to_set: query(&[("c", "3")]),
            ..Default::default()
        }),
    ));
    cases.push((
        "ok query overwrite",
        Request::get("/q?a=1&a=2"),
        ok(OkHttpResponse {
            query_parameters_to_set: query(&[("a", "9")]),
            ..Default::default()
        }),
    ));
    cases.push((
        "ok query remove",
        Request::get("/q?a=1&b=2"),
        ok(OkHttpResponse {
            query_parameters_to_remove: vec!["a".into()],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok query remove last",
        Request::get("/q?a=1"),
        ok(OkHttpResponse {
            query_parameters_to_remove: vec!["a".into()],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok query set and remove",
        Request::get("/q?x=1"),
        ok(OkHttpResponse {
            query_parameters_to_set: query(&[("a", "1")]),
            query_parameters_to_remove: vec!["a".into()],
            ..Default::default()
        }),
    ));
    cases.push((
        "ok query encoded",
        Request::get("/q%20p?k=%2F%20&e="),
        ok(OkHttpResponse {
            query_parameters_to_set: query(&[("n", "%41")]),
            ..Default::default()
        }),
    ));
    cases.push(("ok no ok_response", get(), status_only(0)));
    // Every DeniedHttpResponse field.
    cases.push((
        "denied status",
        get(),
        AuthAction::respond(deny(401, vec![], "")),
    ));
    cases.push((
        "denied no status",
        get(),
        AuthAction::respond(deny(0, vec![], "")),
    ));
    cases.push((
        "denied 3xx",
        get(),
        AuthAction::respond(deny(302, vec![set_header("location", "/login")], "")),
    ));
    cases.push((
        "denied 5xx",
        get(),
        AuthAction::respond(deny(503, vec![], "later")),
    ));
    cases.push((
        "denied headers",
        get(),
        AuthAction::respond(deny(
            403,
            vec![
                set_header("x-why", "policy"),
                set_header("www-authenticate", "Bearer"),
            ],
            "",
        )),
    ));
    cases.push((
        "denied header append",
        get(),
        AuthAction::respond(deny(
            403,
            vec![header("x-why", "policy", 0, Some(true))],
            "",
        )),
    ));
    cases.push((
        "denied content-type",
        get(),
        AuthAction::respond(deny(
            403,
            vec![set_header("content-type", "application/json")],
            "{}",
        )),
    ));
    cases.push((
        "denied body",
        get(),
        AuthAction::respond(deny(403, vec![], "you shall not pass")),
    ));
    cases.push((
        "denied h2",
        get().http2(),
        AuthAction::respond(deny(401, vec![set_header("x-why", "h2")], "no")),
    ));
    // CheckResponse status codes other than OK and PERMISSION_DENIED, bare.
    for (name, code) in [
        ("status CANCELLED", 1),
        ("status UNKNOWN", 2),
        ("status INVALID_ARGUMENT", 3),
        ("status NOT_FOUND", 5),
        ("status RESOURCE_EXHAUSTED", 8),
        ("status UNAVAILABLE", 14),
        ("status UNAUTHENTICATED", 16),
    ] {
        cases.push((name, get(), status_only(code)));
    }
    // error_response, and the call failing.
    cases.push((
        "error_response with status",
        get(),
        error_response(Some(503), "down"),
    ));
    cases.push((
        "error_response without status",
        get(),
        error_response(None, "down"),
    ));
    cases.push((
        "grpc UNAVAILABLE",
        get(),
        AuthAction::Fail(tonic::Status::unavailable("x")),
    ));
    cases.push((
        "grpc PERMISSION_DENIED",
        get(),
        AuthAction::Fail(tonic::Status::permission_denied("x")),
    ));
    cases.push((
        "grpc UNIMPLEMENTED",
        get(),
        AuthAction::Fail(tonic::Status::unimplemented("x")),
    ));
    // Odd request headers and paths.
    cases.push((
        "header empty",
        get().header("x-e", ""),
        AuthAction::respond(allow()),
    ));
    cases.push((
        "header repeated",
        get()
            .header("x-r", "1")
            .header("x-r", "2")
            .header("x-r", "3"),
        AuthAction::respond(allow()),
    ));
    cases.push((
        "header very long",
        get().header("x-l", "v".repeat(30_000)),
        AuthAction::respond(allow()),
    ));
    cases.push((
        "header non-UTF-8",
        get().header("x-n", [b'a', 0xff, 0xfe, b'z']),
        AuthAction::respond(allow()),
    ));
    // Envoy allows 100 request headers; 90 stay under it with the ones the client and Envoy add.
    let many = (0..90).fold(get(), |r, i| {
        r.header(&format!("x-many-{i}"), format!("{i}"))
    });
    cases.push(("headers many", many, AuthAction::respond(allow())));
    cases.push((
        "header non-UTF-8 h2",
        get().header("x-n", [0xc3, 0x28]).http2(),
        AuthAction::respond(allow()),
    ));
    cases.push((
        "path encoded",
        Request::get("/a%2Fb/%E2%82%AC?x=%26&y=%3D"),
        AuthAction::respond(allow()),
    ));
    cases.push((
        "path with semicolons",
        Request::get("/a;b=c/d?e"),
        AuthAction::respond(allow()),
    ));
    cases.push((
        "query empty pieces",
        Request::get("/p?&&a=&=b&"),
        AuthAction::respond(allow()),
    ));
    cases.push((
        "authority with port",
        {
            let mut r = get();
            r.authority = "api.example.com:8443".into();
            r
        },
        AuthAction::respond(allow()),
    ));
    cases.push((
        "body sent along",
        Request::new("POST", "/b").body(vec![7u8; 5000]),
        AuthAction::respond(allow()),
    ));
    cases
}

#[test]
fn every_named_case_matches_native() {
    let h = harness();
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    // All requests first, then the access log, which Envoy writes a little later.
    let mut runs = Vec::new();
    for (name, request, answer) in cases {
        let mut seen = Vec::new();
        for listener in ["native", "wasm"] {
            let case = h.case(listener);
            h.auth.respond(&case, answer.clone());
            let response = h.send(listener, &request.clone().case(&case));
            let checks: Vec<_> = h.auth.checks(&case).iter().map(compare::check).collect();
            let upstream = compare::requests(&h.backend.requests(&case));
            seen.push((case, compare::response(&response), upstream, checks));
        }
        runs.push((name, seen));
    }
    let runs = runs
        .into_iter()
        .map(|(name, seen)| {
            let mut views = seen.into_iter().map(|(case, response, upstream, checks)| {
                let details: Vec<String> =
                    h.access_log(&case, 1).into_iter().map(|l| l.1).collect();
                (response, upstream, details, checks)
            });
            let (native, wasm) = (views.next(), views.next());
            (name.to_owned(), native, wasm)
        })
        .collect();
    compare::assert_runs_match(runs);
}
