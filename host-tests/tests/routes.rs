//! Route rules in a real Envoy: each match kind picks its settings, disabled routes pass
//! unchecked and are counted, context extensions merge, and two stacked instances must both allow.

use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use host_tests::auth_server::{allow, deny};
use host_tests::envoy::{wasm_filter, wasm_filter_named, AUTH_CLUSTER, DOWN_CLUSTER};
use host_tests::{AuthAction, Harness, Listener, Request};
use serde_json::json;

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        let grpc = json!({"envoy_grpc": {"cluster_name": AUTH_CLUSTER}, "timeout": "2s"});
        let routed = json!({
            "grpc_service": grpc,
            "stat_prefix": "routed",
            "context_extensions": {"tenant": "top", "route": "none"},
            "routes": [
                {"match": {"path": "/health"}, "disabled": true},
                {"match": {"prefix": "/public", "methods": ["GET", "HEAD"]}, "disabled": true},
                {"match": {"safe_regex": {"regex": "/pets/[0-9]+"}}, "check_settings": {"context_extensions": {"route": "pets"}}},
                {"match": {"path_separated_prefix": "/api"}, "check_settings": {"context_extensions": {"route": "api", "tenant": "override"}}},
                {"match": {"headers": [{"name": "x-tenant", "string_match": {"prefix": "team-"}}]},
                 "check_settings": {"context_extensions": {"route": "tenant-header"}}},
                {"match": {"domains": ["*.internal"], "headers": [{"name": "x-debug", "present_match": true, "invert_match": true}]},
                 "check_settings": {"context_extensions": {"route": "internal"}}},
                {"match": {"query_parameters": [{"name": "mode", "string_match": {"exact": "admin"}}]},
                 "check_settings": {"grpc_service": {"envoy_grpc": {"cluster_name": DOWN_CLUSTER}}}}
            ]
        });
        // kgateway's two policy levels: a gateway-wide check, and a route-level one that turns
        // itself off for /open.
        let gateway = json!({"grpc_service": grpc, "context_extensions": {"layer": "gateway"}});
        let route_level = json!({
            "grpc_service": grpc,
            "context_extensions": {"layer": "route"},
            "routes": [{"match": {"prefix": "/open"}, "disabled": true}]
        });
        vec![
            Listener::new("routed", vec![wasm_filter(&routed)]),
            Listener::new(
                "stacked",
                vec![
                    wasm_filter_named("gateway", &gateway),
                    wasm_filter_named("route", &route_level),
                ],
            ),
        ]
    })
}

fn extension<'a>(request: &'a CheckRequest, key: &str) -> Option<&'a str> {
    request
        .attributes
        .as_ref()?
        .context_extensions
        .get(key)
        .map(String::as_str)
}

/// Sends one request on the routed listener and returns (status, the check's `route` and
/// `tenant` extensions, or None when no check was made).
fn routed(request: Request) -> (u16, Option<(String, String)>) {
    let h = harness();
    let case = h.case("route");
    let response = h.send("routed", &request.case(&case));
    let check = h.auth.checks(&case).pop().map(|c| {
        let get = |k| extension(&c.request, k).unwrap_or_default().to_owned();
        (get("route"), get("tenant"))
    });
    (response.status, check)
}

fn route_of(request: Request) -> String {
    match routed(request) {
        (200, Some((route, _))) => route,
        other => panic!("expected a checked, allowed request; got {other:?}"),
    }
}

#[test]
fn disabled_routes_pass_unchecked_and_are_counted() {
    let h = harness();
    let before = h.plugin_stat("ext_authz.routed.disabled");
    assert_eq!(routed(Request::get("/health")), (200, None));
    assert_eq!(
        routed(Request::get("/health?probe=1")),
        (200, None),
        "path rules ignore the query"
    );
    assert_eq!(routed(Request::get("/public/logo.png")), (200, None));
    assert_eq!(h.plugin_stat("ext_authz.routed.disabled") - before, 3);
    // The same prefix with a method the route does not name is checked.
    assert_eq!(route_of(Request::new("POST", "/public/upload")), "none");
    assert_eq!(route_of(Request::get("/healthz")), "none", "path is exact");
}

#[test]
fn regex_and_path_separated_prefix() {
    assert_eq!(route_of(Request::get("/pets/42")), "pets");
    assert_eq!(
        route_of(Request::get("/pets/42/toys")),
        "none",
        "safe_regex matches the whole path"
    );
    assert_eq!(
        routed(Request::get("/api")).1,
        Some(("api".into(), "override".into())),
        "the route's key wins"
    );
    assert_eq!(route_of(Request::get("/api/v1/items?x=1")), "api");
    assert_eq!(route_of(Request::get("/apix")), "none");
}

#[test]
fn context_extensions_merge_over_the_top_level() {
    let h = harness();
    let case = h.case("merge");
    h.send("routed", &Request::get("/pets/7").case(&case));
    let check = h.auth.checks(&case).pop().expect("a check");
    assert_eq!(extension(&check.request, "route"), Some("pets"));
    assert_eq!(
        extension(&check.request, "tenant"),
        Some("top"),
        "top-level keys the route leaves alone stay"
    );
}

#[test]
fn header_domain_and_query_rules() {
    assert_eq!(
        route_of(Request::get("/x").header("x-tenant", "team-a")),
        "tenant-header"
    );
    assert_eq!(
        route_of(Request::get("/x").header("x-tenant", "other")),
        "none"
    );
    let mut internal = Request::get("/x");
    internal.authority = "billing.internal:8080".into();
    assert_eq!(route_of(internal.clone()), "internal");
    assert_eq!(
        route_of(internal.header("x-debug", "1")),
        "none",
        "invert_match"
    );
    // The admin route calls an auth server that is down: the override applies, and fails closed.
    assert_eq!(routed(Request::get("/x?mode=admin")), (403, None));
    assert_eq!(route_of(Request::get("/x?mode=user")), "none");
}

#[test]
fn stacked_instances_must_both_allow() {
    let h = harness();
    let layer = |r: &CheckRequest| extension(r, "layer").unwrap_or_default().to_owned();

    let case = h.case("stacked-allow");
    h.auth.script(&case, |_| AuthAction::respond(allow()));
    assert_eq!(
        h.send("stacked", &Request::get("/x").case(&case)).status,
        200
    );
    let layers: Vec<String> = h
        .auth
        .checks(&case)
        .iter()
        .map(|c| layer(&c.request))
        .collect();
    assert_eq!(
        layers,
        ["gateway", "route"],
        "both instances checked, in chain order"
    );

    for denying in ["gateway", "route"] {
        let case = h.case("stacked-deny");
        h.auth.script(&case, move |r| {
            if layer(r) == denying {
                AuthAction::respond(deny(403, vec![], denying))
            } else {
                AuthAction::respond(allow())
            }
        });
        let response = h.send("stacked", &Request::get("/x").case(&case));
        assert_eq!(
            (response.status, response.body_text()),
            (403, denying.to_owned())
        );
        assert!(
            h.backend.requests(&case).is_empty(),
            "a denial by either layer stops the request"
        );
    }

    let case = h.case("stacked-open");
    assert_eq!(
        h.send("stacked", &Request::get("/open/x").case(&case))
            .status,
        200
    );
    let layers: Vec<String> = h
        .auth
        .checks(&case)
        .iter()
        .map(|c| layer(&c.request))
        .collect();
    assert_eq!(
        layers,
        ["gateway"],
        "the route-level instance is off for /open; the gateway's is not"
    );
}
