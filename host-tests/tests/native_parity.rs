//! The same requests, with the same auth server answers, through Envoy's native ext_authz filter
//! and through this filter in the same Envoy: the client and the upstream must see the same.

use envoy_types::pb::envoy::config::core::v3::QueryParameter;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse, OkHttpResponse};
use host_tests::auth_server::{allow, allow_with, deny, header, set_header};
use host_tests::backend::RecordedRequest;
use host_tests::envoy::{
    native_ext_authz, set_metadata, set_typed_metadata, wasm_filter, AUTH_CLUSTER, DOWN_CLUSTER,
};
use host_tests::{compare, AuthAction, Harness, Listener, Request, Response};
use serde_json::{json, Value};

fn config(cluster: &str) -> Value {
    json!({"grpc_service": {"envoy_grpc": {"cluster_name": cluster}, "timeout": "2s"}, "transport_api_version": "V3"})
}

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        let up = config(AUTH_CLUSTER);
        let down = config(DOWN_CLUSTER);
        let mut allow_on_error = down.clone();
        allow_on_error["failure_mode_allow"] = json!(true);
        allow_on_error["failure_mode_allow_header_add"] = json!(true);
        let mut selected = up.clone();
        selected["allowed_headers"] = json!({"patterns": [{"prefix": "x-"}, {"exact": ":path"}, {"safe_regex": {"regex": "user-.*"}}]});
        selected["disallowed_headers"] = json!({"patterns": [{"exact": "x-secret"}, {"prefix": "X-Internal", "ignore_case": true}]});
        let mut clearing = up.clone();
        clearing["clear_route_cache"] = json!(true);
        let mut truncating = up.clone();
        truncating["max_denied_response_body_bytes"] = json!(4);
        let mut no_ingestion = up.clone();
        no_ingestion["enable_dynamic_metadata_ingestion"] = json!(false);
        let mut trusting_xff = up.clone();
        trusting_xff["include_forwarded_source_address"] = json!(true);
        let mut raw = up.clone();
        raw["encode_raw_headers"] = json!(true);
        let mut metadata = up.clone();
        metadata["metadata_context_namespaces"] = json!(["acme.tenant", "absent.ns"]);
        metadata["route_metadata_context_namespaces"] = json!(["acme.route"]);
        metadata["typed_metadata_context_namespaces"] = json!(["acme.typed", "absent.typed"]);
        metadata["route_typed_metadata_context_namespaces"] = json!(["acme.route.typed"]);
        let tenant = json!({"tier": "gold", "limits": {"rps": 10}});
        let string_value = |v: &str| json!({"@type": "type.googleapis.com/google.protobuf.StringValue", "value": v});
        let typed = string_value("typed-tenant");
        let route_metadata = json!({
            "filter_metadata": {"acme.route": {"name": "r1"}, "other": {"x": 1}},
            "typed_filter_metadata": {"acme.route.typed": string_value("r1"), "other.typed": string_value("x")}
        });
        vec![
            Listener::new("wasm", vec![wasm_filter(&up)]),
            Listener::new("native", vec![native_ext_authz(&up)]),
            Listener::new("wasm_selected", vec![wasm_filter(&selected)]),
            Listener::new("native_selected", vec![native_ext_authz(&selected)]),
            Listener::new("wasm_raw", vec![wasm_filter(&raw)]),
            Listener::new("native_raw", vec![native_ext_authz(&raw)]),
            Listener::new(
                "wasm_metadata",
                vec![
                    set_metadata("acme.tenant", &tenant),
                    set_typed_metadata("acme.typed", &typed),
                    wasm_filter(&metadata),
                ],
            )
            .route_metadata(route_metadata.clone()),
            Listener::new(
                "native_metadata",
                vec![
                    set_metadata("acme.tenant", &tenant),
                    set_typed_metadata("acme.typed", &typed),
                    native_ext_authz(&metadata),
                ],
            )
            .route_metadata(route_metadata),
            Listener::new("wasm_down", vec![wasm_filter(&down)]),
            Listener::new("native_down", vec![native_ext_authz(&down)]),
            Listener::new("wasm_edge", vec![wasm_filter(&up)]).use_remote_address(),
            Listener::new("native_edge", vec![native_ext_authz(&up)]).use_remote_address(),
            Listener::new("wasm_trusting_xff", vec![wasm_filter(&trusting_xff)]),
            Listener::new("wasm_no_ingestion", vec![wasm_filter(&no_ingestion)]),
            Listener::new("wasm_routes", vec![wasm_filter(&up)]).route_before(by_header()),
            Listener::new("native_routes", vec![native_ext_authz(&up)]).route_before(by_header()),
            Listener::new("native_routes_cleared", vec![native_ext_authz(&clearing)])
                .route_before(by_header()),
            Listener::new("wasm_routes_cleared", vec![wasm_filter(&clearing)])
                .route_before(by_header()),
            Listener::new("wasm_truncating", vec![wasm_filter(&truncating)]),
            Listener::new("native_truncating", vec![native_ext_authz(&truncating)]),
            Listener::new("native_no_ingestion", vec![native_ext_authz(&no_ingestion)]),
            Listener::new("wasm_allow_on_error", vec![wasm_filter(&allow_on_error)]),
            Listener::new(
                "native_allow_on_error",
                vec![native_ext_authz(&allow_on_error)],
            ),
        ]
    })
}

/// Runs `request` through the native and the wasm listener of `listeners` with `answer` from the
/// auth server, and asserts both filters gave the client and the upstream the same.
fn assert_same(
    name: &str,
    listeners: (&str, &str),
    request: Request,
    answer: AuthAction,
) -> (Response, Vec<RecordedRequest>) {
    let h = harness();
    let mut seen = Vec::new();
    for listener in [listeners.0, listeners.1] {
        let case = h.case(&format!("{name}-{listener}"));
        h.auth.respond(&case, answer.clone());
        let response = h.send(listener, &request.clone().case(&case));
        let upstream = h.backend.requests(&case);
        let details = h.access_log(&case, 1);
        let checks: Vec<_> = h.auth.checks(&case).iter().map(compare::check).collect();
        seen.push((response, upstream, details, checks));
    }
    let (native, wasm) = (&seen[0], &seen[1]);
    assert_eq!(
        compare::response(&wasm.0),
        compare::response(&native.0),
        "{name}: client responses differ"
    );
    assert_eq!(
        compare::requests(&wasm.1),
        compare::requests(&native.1),
        "{name}: upstream requests differ"
    );
    assert_eq!(
        wasm.2.iter().map(|d| &d.1).collect::<Vec<_>>(),
        native.2.iter().map(|d| &d.1).collect::<Vec<_>>(),
        "{name}: response code details differ"
    );
    assert_eq!(
        wasm.3, native.3,
        "{name}: the auth server saw different CheckRequests"
    );
    let (response, upstream, _, _) = seen.swap_remove(1);
    (response, upstream)
}

fn same(name: &str, request: Request, answer: CheckResponse) -> (Response, Vec<RecordedRequest>) {
    assert_same(
        name,
        ("native", "wasm"),
        request,
        AuthAction::respond(answer),
    )
}

#[test]
fn plain_allow() {
    let (response, upstream) = same("plain-allow", Request::get("/hello?x=1"), allow());
    assert_eq!(response.status, 200);
    assert_eq!(upstream.len(), 1);
}

/// The append actions native honours the same way. (ADD_IF_ABSENT and OVERWRITE_IF_EXISTS, which
/// native 1.40 ignores and this filter honours, are in `core.rs`.)
#[test]
fn allow_with_append_and_default_actions() {
    let ok = OkHttpResponse {
        headers: vec![
            header("x-add", "server", 0, None),
            header("x-add-new", "server", 0, None),
            header("x-overwrite-or-add", "server", 2, None),
            header("x-overwrite-or-add-new", "server", 2, None),
            header("x-append-true", "server", 0, Some(true)),
            header("x-append-true-new", "server", 0, Some(true)),
            header("x-append-false", "server", 0, Some(false)),
            header("x-append-false-new", "server", 3, Some(false)),
        ],
        ..Default::default()
    };
    let request = [
        "x-add",
        "x-overwrite-or-add",
        "x-append-true",
        "x-append-false",
        "x-append-false-new",
    ]
    .iter()
    .fold(Request::get("/append"), |r, name| r.header(name, "client"));
    let (response, upstream) = same("append-actions", request, allow_with(ok));
    assert_eq!(response.status, 200);
    // The default action overwrites: a client cannot slip in a value beside the server's.
    assert_eq!(upstream[0].header_all("x-add"), ["server"]);
    assert_eq!(upstream[0].header_all("x-append-true"), ["client,server"]);
}

#[test]
fn allow_removes_headers_but_never_pseudo_headers_or_host() {
    let ok = OkHttpResponse {
        headers_to_remove: vec![
            "x-secret".into(),
            ":path".into(),
            "host".into(),
            ":authority".into(),
            "x-absent".into(),
        ],
        ..Default::default()
    };
    let request = Request::get("/remove?k=v")
        .header("x-secret", "s")
        .header("x-keep", "k");
    let (_, upstream) = same("remove", request, allow_with(ok));
    assert!(upstream[0].header_all("x-secret").is_empty());
    assert_eq!(upstream[0].path, "/remove?k=v");
}

#[test]
fn allow_rewrites_the_query() {
    let ok = OkHttpResponse {
        query_parameters_to_set: vec![
            QueryParameter {
                key: "set".into(),
                value: "new".into(),
            },
            QueryParameter {
                key: "added".into(),
                value: "a%20b".into(),
            },
        ],
        query_parameters_to_remove: vec!["drop".into()],
        ..Default::default()
    };
    let (_, upstream) = same(
        "query",
        Request::get("/q?z=1&drop=x&set=old&b=2&b=3"),
        allow_with(ok),
    );
    assert_eq!(upstream[0].path, "/q?added=a%20b&b=2&b=3&set=new&z=1");
}

#[test]
fn allow_adds_response_headers() {
    let ok = OkHttpResponse {
        response_headers_to_add: vec![
            set_header("x-resp-set", "v"),
            header("x-resp-add", "v", 0, None),
            header("x-backend", "server", 0, Some(true)),
            header("content-type", "application/x-server", 2, None),
        ],
        ..Default::default()
    };
    let (response, _) = same("response-headers", Request::get("/r"), allow_with(ok));
    assert_eq!(response.header("x-resp-set").as_deref(), Some("v"));
}

#[test]
fn deny_with_reply() {
    let answer = deny(
        401,
        vec![
            set_header("www-authenticate", "Bearer"),
            set_header("content-type", "application/json"),
            header("x-two", "a", 0, None),
        ],
        r#"{"error":"no token"}"#,
    );
    let (response, upstream) = same("deny", Request::get("/private"), answer);
    assert_eq!(response.status, 401);
    assert!(upstream.is_empty());
}

#[test]
fn deny_without_status_or_reply() {
    let (response, upstream) = same("deny-bare", Request::get("/private"), deny(0, vec![], ""));
    assert_eq!(response.status, 403);
    assert!(upstream.is_empty());
}

#[test]
fn error_status_from_the_server() {
    let (response, upstream) = assert_same(
        "unavailable",
        ("native", "wasm"),
        Request::get("/e"),
        AuthAction::Fail(tonic::Status::unavailable("down for maintenance")),
    );
    assert_eq!(response.status, 403);
    assert!(upstream.is_empty());
}

#[test]
fn server_down() {
    let (response, upstream) = assert_same(
        "down",
        ("native_down", "wasm_down"),
        Request::get("/d"),
        AuthAction::respond(allow()),
    );
    assert_eq!(response.status, 403);
    assert!(upstream.is_empty());
}

#[test]
fn server_down_with_failure_mode_allow() {
    let (response, upstream) = assert_same(
        "down-allowed",
        ("native_allow_on_error", "wasm_allow_on_error"),
        Request::get("/d"),
        AuthAction::respond(allow()),
    );
    assert_eq!(response.status, 200);
    assert_eq!(
        upstream[0]
            .header("x-envoy-auth-failure-mode-allowed")
            .as_deref(),
        Some("true")
    );
}

#[test]
fn http2_client() {
    let ok = OkHttpResponse {
        headers: vec![set_header("x-user", "alice")],
        ..Default::default()
    };
    let (response, upstream) = same(
        "h2",
        Request::new("POST", "/h2?a=1").body("hello").http2(),
        allow_with(ok),
    );
    assert_eq!(response.status, 200);
    assert_eq!(upstream[0].body, b"hello");
}

#[test]
fn odd_header_values() {
    let request = Request::get("/odd")
        .header("x-empty", "")
        .header("x-repeat", "1")
        .header("x-repeat", "2")
        .header("x-long", "v".repeat(8000))
        .header("x-latin1", [b'a', 0xe9, b'b']);
    same("odd-headers", request, allow());
}

/// A client that sends a whole HTTP/1.1 request and hangs up while its check is pending: Envoy
/// does not read again until it has answered, so it does not see the hang-up. What happens then
/// must be the same with either filter.
#[test]
fn client_gone_after_a_complete_request() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let h = harness();
    let mut reached = Vec::new();
    for listener in ["native", "wasm"] {
        let case = h.case(&format!("gone-{listener}"));
        h.auth.respond(
            &case,
            AuthAction::Delay(
                Duration::from_millis(300),
                Box::new(AuthAction::respond(allow())),
            ),
        );
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", h.envoy.port(listener))).expect("connect");
        write!(stream, "POST /gone HTTP/1.1\r\nhost: test.local\r\nx-case: {case}\r\ncontent-length: 4\r\n\r\nbody").expect("write");
        let deadline = Instant::now() + Duration::from_secs(5);
        while h.auth.checks(&case).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(stream);
        let log = h.access_log(&case, 1);
        reached.push((
            h.backend.requests(&case).len(),
            log.first().map(|l| l.1.clone()),
        ));
    }
    assert_eq!(
        reached[0], reached[1],
        "native, then wasm: (upstream requests, details)"
    );
}

#[test]
fn allowed_and_disallowed_headers() {
    let request = Request::get("/sel?q=1")
        .header("x-keep", "k")
        .header("x-secret", "s")
        .header("x-internal-id", "i")
        .header("user-agent", "ua")
        .header("accept", "a");
    assert_same(
        "selected",
        ("native_selected", "wasm_selected"),
        request,
        AuthAction::respond(allow()),
    );
    let h = harness();
    let case = h.case("selected-detail");
    h.send(
        "wasm_selected",
        &Request::get("/x")
            .case(&case)
            .header("x-secret", "s")
            .header("x-keep", "k"),
    );
    let check = h.auth.checks(&case).pop().expect("a check");
    assert_eq!(check.header("x-keep"), Some("k"));
    assert_eq!(check.header("x-secret"), None, "disallowed wins");
    assert_eq!(check.header(":method"), None, "not allowed");
    assert_eq!(check.http().method, "GET", "the method field stays");
}

#[test]
fn raw_headers() {
    let request = Request::get("/raw")
        .header("x-repeat", "1")
        .header("x-repeat", "2")
        .header("x-latin1", [b'a', 0xe9])
        .header("x-empty", "");
    assert_same(
        "raw",
        ("native_raw", "wasm_raw"),
        request.clone(),
        AuthAction::respond(allow()),
    );
    assert_same(
        "raw-h2",
        ("native_raw", "wasm_raw"),
        request.http2(),
        AuthAction::respond(allow()),
    );
}

#[test]
fn dynamic_and_route_metadata_namespaces() {
    assert_same(
        "metadata",
        ("native_metadata", "wasm_metadata"),
        Request::get("/md"),
        AuthAction::respond(allow()),
    );
    let h = harness();
    let case = h.case("metadata-detail");
    h.send("wasm_metadata", &Request::get("/md").case(&case));
    let check = h.auth.checks(&case).pop().expect("a check");
    let attributes = check.request.attributes.expect("attributes");
    let context = attributes.metadata_context.expect("metadata_context");
    let typed = &context.typed_filter_metadata;
    assert_eq!(
        typed.keys().collect::<Vec<_>>(),
        ["acme.typed"],
        "{typed:?}"
    );
    assert_eq!(
        typed["acme.typed"].type_url,
        "type.googleapis.com/google.protobuf.StringValue"
    );
    let stream = context.filter_metadata;
    assert!(
        stream.contains_key("acme.tenant"),
        "the stream's namespace: {stream:?}"
    );
    assert!(!stream.contains_key("absent.ns"));
    let route = attributes
        .route_metadata_context
        .expect("route_metadata_context");
    assert_eq!(
        route.filter_metadata.keys().collect::<Vec<_>>(),
        ["acme.route"],
        "only the namespace asked for"
    );
    assert_eq!(
        route.typed_filter_metadata.keys().collect::<Vec<_>>(),
        ["acme.route.typed"]
    );
}

/// `source.address` as the auth server got it: address and port.
fn source_address(check: &CheckRequest) -> Option<(String, u32)> {
    use envoy_types::pb::envoy::config::core::v3::{address, socket_address::PortSpecifier};
    let peer = check.attributes.as_ref()?.source.as_ref()?;
    match peer.address.as_ref()?.address.as_ref()? {
        address::Address::SocketAddress(socket) => Some((
            socket.address.clone(),
            match socket.port_specifier {
                Some(PortSpecifier::PortValue(port)) => port,
                _ => 0,
            },
        )),
        _ => None,
    }
}

/// The one CheckRequest of a request sent with `x-forwarded-for` through `listener`.
fn check_with_forwarded_for(listener: &str, forwarded_for: &str) -> CheckRequest {
    let h = harness();
    let case = h.case(&format!("xff-{listener}"));
    h.auth.respond(&case, AuthAction::respond(allow()));
    let request = Request::get("/xff")
        .header("x-forwarded-for", forwarded_for)
        .case(&case);
    assert_eq!(h.send(listener, &request).status, 200);
    let checks = h.auth.checks(&case);
    assert_eq!(checks.len(), 1, "{listener}");
    checks[0].request.clone()
}

/// The one place a client could choose what the auth server is told: under Envoy's default
/// `use_remote_address: false`, Envoy's stream-level source address (all a wasm filter can read)
/// comes from `x-forwarded-for`, where native sends the TCP peer. This filter leaves such an
/// address out rather than pass on one the client wrote; the rest of the CheckRequest is native's.
#[test]
fn a_forwarded_source_address_is_left_out() {
    for forwarded_for in ["203.0.113.7", "198.51.100.1, 2001:db8::7"] {
        let native = check_with_forwarded_for("native", forwarded_for);
        let wasm = check_with_forwarded_for("wasm", forwarded_for);
        let (address, port) = source_address(&native).expect("native sends the peer");
        assert_eq!(address, "127.0.0.1", "native sends the TCP peer");
        assert_ne!(port, 0);
        assert_eq!(source_address(&wasm), None, "{forwarded_for}: left out");

        // Apart from that, the same CheckRequest.
        let without_source_address = |check: &CheckRequest| {
            let mut check = check.clone();
            if let Some(source) = check.attributes.as_mut().and_then(|a| a.source.as_mut()) {
                source.address = None;
            }
            compare::check(&host_tests::auth_server::RecordedCheck {
                request: check,
                metadata: Vec::new(),
                authority: String::new(),
            })
        };
        assert_eq!(
            without_source_address(&wasm),
            without_source_address(&native)
        );
    }
}

/// An address that does not parse leaves Envoy's source address the connection's, which goes.
#[test]
fn an_unparsable_forwarded_for_leaves_the_peer() {
    let wasm = check_with_forwarded_for("wasm", "not-an-address");
    let (address, port) = source_address(&wasm).expect("the peer is sent");
    assert_eq!(address, "127.0.0.1");
    assert_ne!(port, 0);
}

/// At an edge proxy (`use_remote_address: true`), Envoy's source address is the peer's, and both
/// filters send the same, `x-forwarded-for` or not.
#[test]
fn at_the_edge_the_source_address_is_natives() {
    let (_, upstream) = assert_same(
        "edge",
        ("native_edge", "wasm_edge"),
        Request::get("/edge").header("x-forwarded-for", "203.0.113.7"),
        AuthAction::respond(allow()),
    );
    assert_eq!(upstream.len(), 1);
    let wasm = check_with_forwarded_for("wasm_edge", "203.0.113.7");
    assert_eq!(
        source_address(&wasm).map(|(address, port)| (address, port != 0)),
        Some(("127.0.0.1".to_owned(), true))
    );
}

/// `include_forwarded_source_address: true`: the operator trusts what Envoy derived, port 0 and all.
#[test]
fn a_trusted_forwarded_source_address_is_sent() {
    let wasm = check_with_forwarded_for("wasm_trusting_xff", "198.51.100.1, 203.0.113.7");
    assert_eq!(source_address(&wasm), Some(("203.0.113.7".to_owned(), 0)));
}

/// What each filter leaves for access logs of a server's `dynamic_metadata`: native in the
/// dynamic metadata namespace `envoy.filters.http.ext_authz`, this filter in the filter state
/// `wasm.ext_authz.dynamic_metadata`. `ext_authz_duration` (milliseconds, on allowing answers)
/// is checked for and then left out, as it differs from request to request.
fn metadata_left_for_logs(listener: &str, answer: CheckResponse) -> (u16, Option<Value>, bool) {
    let h = harness();
    let case = h.case(&format!("metadata-{listener}"));
    h.auth.respond(&case, AuthAction::respond(answer));
    let status = h.send(listener, &Request::get("/dm").case(&case)).status;
    let line = h
        .access_log_lines(&case, 1)
        .pop()
        .expect("an access log line");
    let mut logged = if listener.starts_with("native") {
        line.dynamic_metadata
    } else {
        line.filter_state
            .map(|text| serde_json::from_str(&text).expect("JSON filter state"))
    };
    let duration = logged
        .as_mut()
        .and_then(Value::as_object_mut)
        .and_then(|object| object.remove("ext_authz_duration"))
        .is_some_and(|d| d.is_number());
    (status, logged, duration)
}

#[test]
fn dynamic_metadata_is_left_for_logs_as_native_leaves_it() {
    use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value as ProtoValue};
    let metadata = Struct {
        fields: [(
            "user".to_owned(),
            ProtoValue {
                kind: Some(Kind::StringValue("alice".into())),
            },
        )]
        .into(),
    };
    let allowing = CheckResponse {
        dynamic_metadata: Some(metadata.clone()),
        ..allow()
    };
    let denying = CheckResponse {
        dynamic_metadata: Some(metadata),
        ..deny(401, Vec::new(), "no")
    };
    let alice = Some(json!({"user": "alice"}));
    for (native, wasm) in [
        ("native", "wasm"),
        ("native_no_ingestion", "wasm_no_ingestion"),
    ] {
        let ingested = native == "native";
        for (answer, status) in [(allowing.clone(), 200), (denying.clone(), 401)] {
            let expected = (
                status,
                if ingested { alice.clone() } else { None },
                ingested && status == 200,
            );
            assert_eq!(
                metadata_left_for_logs(native, answer.clone()),
                expected,
                "{native}"
            );
            assert_eq!(metadata_left_for_logs(wasm, answer), expected, "{wasm}");
        }
    }
}

/// `max_denied_response_body_bytes`: a denial's body is cut; an allowed request's is not touched.
#[test]
fn denied_bodies_are_cut_as_native_cuts_them() {
    let (response, _) = assert_same(
        "truncated-denial",
        ("native_truncating", "wasm_truncating"),
        Request::get("/t"),
        AuthAction::respond(deny(401, vec![set_header("x-why", "1")], "0123456789")),
    );
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (401, "0123")
    );
    let (response, _) = assert_same(
        "short-denial",
        ("native_truncating", "wasm_truncating"),
        Request::get("/t"),
        AuthAction::respond(deny(403, Vec::new(), "no")),
    );
    assert_eq!(response.body_text(), "no");
}

/// A route taken by requests with `x-route: b`; it marks them `x-picked: by_header` upstream.
fn by_header() -> Value {
    json!({
        "match": {"prefix": "/", "headers": [{"name": "x-route", "string_match": {"exact": "b"}}]},
        "route": {"cluster": "backend", "timeout": "10s"},
        "request_headers_to_add": [{"header": {"key": "x-picked", "value": "by_header"}}]
    })
}

/// Which route a request took, after the server's changes to it.
fn route_taken(listener: &str, answer: CheckResponse, request: Request) -> Option<String> {
    let h = harness();
    let case = h.case(&format!("route-{listener}"));
    h.auth.respond(&case, AuthAction::respond(answer));
    assert_eq!(h.send(listener, &request.case(&case)).status, 200);
    let upstream = h.backend.requests(&case);
    assert_eq!(upstream.len(), 1);
    upstream[0].header("x-picked")
}

/// The route is picked before the check. Envoy picks it again after every request header change
/// a wasm filter makes, so this filter behaves as native with `clear_route_cache: true`. Native
/// with it unset keeps the first route: the one difference left, in the README.
#[test]
fn the_route_after_the_servers_changes() {
    let sets_route = allow_with(OkHttpResponse {
        headers: vec![set_header("x-route", "b")],
        ..Default::default()
    });
    let removes_route = allow_with(OkHttpResponse {
        headers_to_remove: vec!["x-route".into()],
        ..Default::default()
    });
    let routes = |listener: &str| {
        (
            route_taken(listener, sets_route.clone(), Request::get("/r")),
            route_taken(
                listener,
                removes_route.clone(),
                Request::get("/r").header("x-route", "b"),
            ),
        )
    };
    let picked_again = (Some("by_header".to_owned()), None);
    assert_eq!(routes("native_routes_cleared"), picked_again);
    assert_eq!(routes("wasm_routes_cleared"), picked_again);
    assert_eq!(routes("wasm_routes"), picked_again);
    assert_eq!(
        routes("native_routes"),
        (None, Some("by_header".to_owned()))
    );
}
