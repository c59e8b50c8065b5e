//! The Envoy Gateway example's policies in a real Envoy, configured as Envoy Gateway 1.9's
//! translator configures its Envoys (internal/xds/translator/wasm.go of v1.9.0): each `wasm[]`
//! entry is an HTTP filter `envoy.filters.http.wasm/<policy>/wasm/<i>`, disabled in the
//! connection manager and enabled per route by an empty `FilterConfig`; its `config` is handed
//! over as a JSON string; each route rule has its cluster `httproute/<ns>/<route>/rule/<i>`.
//! With no Kubernetes here, the test stands in for the controller: what it checks is that the
//! plugin configs work in that shape: the cluster name with its `/`s, the authority, `/healthz`
//! unchecked, and the route-level policy's two checks that must both allow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, OkHttpResponse};
use host_tests::auth_server::{allow_with, deny, set_header, AuthServer};
use host_tests::envoy::{static_cluster, wasm_module};
use host_tests::{AuthAction, Backend, Envoy, Request};
use serde_json::{json, Value};
use ship_tests::{load, workspace_root, YamlFile};

const ROUTER: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const HCM: &str =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

fn policy(file: &str) -> Value {
    match load(&workspace_root().join("examples/envoy-gateway").join(file)).unwrap() {
        YamlFile::Kubernetes(mut objects) => objects.remove(0),
        other => panic!("{file}: {other:?}"),
    }
}

/// The HTTP filters of a policy, and the per-route config that turns them on.
fn filters(policy: &Value) -> (Vec<Value>, Value) {
    let name = format!(
        "envoyextensionpolicy/{}/{}",
        policy["metadata"]["namespace"].as_str().unwrap(),
        policy["metadata"]["name"].as_str().unwrap()
    );
    let module = wasm_module().display().to_string();
    let mut filters = Vec::new();
    let mut per_route = serde_json::Map::new();
    for (i, entry) in policy["spec"]["wasm"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let ir_name = format!("{name}/wasm/{i}");
        let filter_name = format!("envoy.filters.http.wasm/{ir_name}");
        filters.push(json!({
            "name": filter_name,
            "disabled": true,
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": entry["name"],
                    "vm_config": {
                        "vm_id": ir_name,
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": module}}
                    },
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": entry["config"].to_string()
                    },
                    "fail_open": entry["failOpen"]
                }
            }
        }));
        per_route.insert(
            filter_name,
            json!({"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "config": {}}),
        );
    }
    (filters, Value::Object(per_route))
}

/// Answers as examples/auth-server does.
fn example_rules(request: &CheckRequest) -> AuthAction {
    let headers = &request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .unwrap()
        .headers;
    if headers.get("x-ext-authz").is_some_and(|v| v == "allow") {
        AuthAction::respond(allow_with(OkHttpResponse {
            headers: vec![set_header("x-ext-authz-check-result", "allowed")],
            ..Default::default()
        }))
    } else {
        AuthAction::respond(deny(403, vec![], "denied by ext_authz\n"))
    }
}

#[test]
fn the_policies_check_requests_as_envoy_gateway_would_run_them() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (auth, backend) =
        runtime.block_on(async { (AuthServer::start().await, Backend::start().await) });
    let gateway_policy = policy("extension-policy.yaml");
    let admin_policy = policy("admin-policy.yaml");
    let cluster = gateway_policy["spec"]["wasm"][0]["config"]["grpc_service"]["envoy_grpc"]
        ["cluster_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut http_filters, gateway_on) = filters(&gateway_policy);
    let (admin_filters, admin_on) = filters(&admin_policy);
    http_filters.extend(admin_filters);
    http_filters
        .push(json!({"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}));
    let route = |prefix: &str, cluster: &str, on: &Value| {
        json!({"match": {"prefix": prefix}, "route": {"cluster": cluster},
               "typed_per_filter_config": on})
    };
    let bootstrap = json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": HCM,
                        "stat_prefix": "gateway",
                        "route_config": {"virtual_hosts": [{
                            "name": "www", "domains": ["*"],
                            "routes": [
                                route("/admin", "httproute/foo/admin/rule/0", &admin_on),
                                route("/", "httproute/foo/backend/rule/0", &gateway_on)
                            ]
                        }]},
                        "http_filters": http_filters
                    }
                }]}]
            }],
            "clusters": [
                static_cluster(&cluster, auth.addr.port(), true),
                static_cluster("httproute/foo/backend/rule/0", backend.addr.port(), false),
                static_cluster("httproute/foo/admin/rule/0", backend.addr.port(), false)
            ]
        }
    });
    let envoy = Envoy::start(&bootstrap)
        .unwrap_or_else(|f| panic!("Envoy refused the Envoy Gateway shape:\n{}", f.log));
    let port = envoy.port("gateway");
    let send = |path: &str, case: &str, headers: &[(&str, &str)]| {
        auth.script(case, example_rules);
        let mut request = Request::get(path).case(case);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        runtime
            .block_on(host_tests::client::send(port, &request))
            .unwrap_or_else(|e| panic!("{e}\nEnvoy log:\n{}", envoy.log()))
    };
    let allow = [("x-ext-authz", "allow")];

    let allowed = send("/hello", "eg-allowed", &allow);
    assert_eq!(
        allowed.status,
        200,
        "{}\n{}",
        allowed.body_text(),
        envoy.log()
    );
    let upstream = backend.requests("eg-allowed");
    assert_eq!(upstream.len(), 1);
    assert_eq!(
        upstream[0].header("x-ext-authz-check-result").as_deref(),
        Some("allowed")
    );
    // The call went to the cluster by its Envoy Gateway name, with the configured authority.
    let checks = auth.checks("eg-allowed");
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].authority, "ext-authz.foo.svc.cluster.local");

    let denied = send("/hello", "eg-denied", &[]);
    assert_eq!(denied.status, 403);
    assert!(backend.requests("eg-denied").is_empty());

    // /healthz passes with no call.
    let health = send("/healthz", "eg-health", &[]);
    assert_eq!(health.status, 200);
    assert!(auth.checks("eg-health").is_empty());

    // /admin: the Gateway's check and the route's own must both allow.
    let both = send(
        "/admin/users",
        "eg-admin",
        &[("x-ext-authz", "allow"), ("x-team", "admin")],
    );
    assert_eq!(both.status, 200, "{}", both.body_text());
    assert_eq!(auth.checks("eg-admin").len(), 1);
    let first_only = send("/admin/users", "eg-admin-no-team", &allow);
    assert_eq!(first_only.status, 403);
    assert!(backend.requests("eg-admin-no-team").is_empty());
    assert_eq!(auth.checks("eg-admin-no-team").len(), 1);
    let second_only = send("/admin/users", "eg-admin-no-auth", &[("x-team", "admin")]);
    assert_eq!(second_only.status, 403);
    assert!(backend.requests("eg-admin-no-auth").is_empty());
    // The route's check counts under its stat_prefix.
    let stats = envoy.stats();
    assert_eq!(stats.get("wasmcustom.ext_authz.admin.ok"), Some(&1));
    assert_eq!(stats.get("wasmcustom.ext_authz.admin.denied"), Some(&1));
}
