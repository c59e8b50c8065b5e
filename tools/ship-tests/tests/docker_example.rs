//! The docker example (`examples/docker`) without docker: its compose file is checked against the
//! Envoy config it mounts, then that Envoy config runs in the local Envoy with its addresses
//! rewritten to loopback, in front of the harness's auth server (answering as the example auth
//! server does) and backend; an allowed and a denied request go through it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, OkHttpResponse};
use ext_authz_config::yaml::{Node, Numbers};
use host_tests::auth_server::{allow_with, deny, set_header, AuthServer};
use host_tests::envoy::wasm_module;
use host_tests::{AuthAction, Backend, Envoy, Request};
use serde_json::{json, Value};
use ship_tests::{load, module_files, visit_mut, workspace_root, YamlFile};

fn compose() -> Node {
    match load(&workspace_root().join("examples/docker/compose.yaml")).unwrap() {
        YamlFile::Compose(doc) => doc,
        other => panic!("compose.yaml is not a compose file: {other:?}"),
    }
}

fn envoy_config() -> Value {
    match load(&workspace_root().join("examples/docker/envoy.yaml")).unwrap() {
        YamlFile::Envoy(doc) => doc.to_json(Numbers::AsWritten),
        other => panic!("envoy.yaml is not an Envoy config: {other:?}"),
    }
}

/// The compose services' `--listen` ports, by service name.
fn listen_ports(compose: &Value) -> BTreeMap<String, u64> {
    let mut ports = BTreeMap::new();
    for (name, service) in compose["services"].as_object().unwrap() {
        let command: Vec<&str> = service["command"]
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(i) = command.iter().position(|a| *a == "--listen") {
            let port = command[i + 1].rsplit(':').next().unwrap().parse().unwrap();
            ports.insert(name.clone(), port);
        }
    }
    ports
}

/// Every cluster endpoint's `(host, port)`.
fn endpoints(config: &Value) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for cluster in config["static_resources"]["clusters"].as_array().unwrap() {
        for locality in cluster["load_assignment"]["endpoints"].as_array().unwrap() {
            for endpoint in locality["lb_endpoints"].as_array().unwrap() {
                let address = &endpoint["endpoint"]["address"]["socket_address"];
                out.push((
                    address["address"].as_str().unwrap().to_owned(),
                    address["port_value"].as_u64().unwrap(),
                ));
            }
        }
    }
    out
}

#[test]
fn compose_file_matches_the_envoy_config_it_mounts() {
    let compose = compose().to_json(Numbers::AsWritten);
    let config = envoy_config();
    let envoy = &compose["services"]["envoy"];
    assert!(
        envoy["image"]
            .as_str()
            .unwrap()
            .starts_with("envoyproxy/envoy:v1.40"),
        "{}",
        envoy["image"]
    );
    let volumes: Vec<&str> = envoy["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        volumes.contains(&"./envoy.yaml:/etc/envoy/envoy.yaml:ro"),
        "{volumes:?}"
    );
    // The module is mounted where the config loads it from, from where `make build` puts it.
    let modules = module_files(&config);
    assert_eq!(modules.len(), 1);
    let mount = format!("../../dist/ext_authz.wasm:{}:ro", modules[0]);
    assert!(
        volumes.contains(&mount.as_str()),
        "{mount} not in {volumes:?}"
    );
    // Every cluster endpoint is a compose service listening on that port.
    let ports = listen_ports(&compose);
    for (host, port) in endpoints(&config) {
        assert_eq!(
            ports.get(&host),
            Some(&port),
            "cluster endpoint {host}:{port} vs {ports:?}"
        );
    }
    // The published listener port is the listener's.
    let listener_port = config["static_resources"]["listeners"][0]["address"]["socket_address"]
        ["port_value"]
        .as_u64()
        .unwrap();
    let published: Vec<&str> = envoy["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        published.contains(&format!("{listener_port}:{listener_port}").as_str()),
        "{published:?}"
    );
}

/// Answers as examples/auth-server does: allowed with `x-ext-authz: allow` or
/// `authorization: authorize me`, denied with 403 otherwise.
fn example_rules(request: &CheckRequest) -> AuthAction {
    let headers = &request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .unwrap()
        .headers;
    let allowed = headers.get("x-ext-authz").is_some_and(|v| v == "allow")
        || headers
            .get("authorization")
            .is_some_and(|v| v == "authorize me");
    if allowed {
        AuthAction::respond(allow_with(OkHttpResponse {
            headers: vec![set_header("x-ext-authz-check-result", "allowed")],
            ..Default::default()
        }))
    } else {
        AuthAction::respond(deny(
            403,
            vec![set_header("x-ext-authz-check-result", "denied")],
            "denied by ext_authz\n",
        ))
    }
}

#[test]
fn the_docker_envoy_config_serves_allowed_and_denied_requests() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (auth, backend) =
        runtime.block_on(async { (AuthServer::start().await, Backend::start().await) });

    // The docker network's names become the local servers; the container's addresses loopback.
    let mut config = envoy_config();
    let targets = BTreeMap::from([
        ("auth-server".to_owned(), auth.addr.port()),
        ("backend".to_owned(), backend.addr.port()),
    ]);
    let module = wasm_module().display().to_string();
    let mut rewritten = Vec::new();
    visit_mut(&mut config, &mut |object| {
        if let Some(address) = object.get_mut("socket_address") {
            let host = address["address"].as_str().unwrap().to_owned();
            let port = match targets.get(&host) {
                Some(port) => *port,
                None => {
                    assert_eq!(host, "0.0.0.0", "an unexpected address");
                    0
                }
            };
            rewritten.push(host);
            *address = json!({"address": "127.0.0.1", "port_value": port});
        }
        if let Some(local) = object.pointer_mut("/code/local") {
            *local = json!({"filename": module});
        }
    });
    rewritten.sort();
    assert_eq!(rewritten, ["0.0.0.0", "0.0.0.0", "auth-server", "backend"]);

    let envoy = match Envoy::start(&config) {
        Ok(envoy) => envoy,
        Err(failure) => panic!(
            "Envoy refused the docker example's config:\n{}",
            failure.log
        ),
    };
    let port = envoy.port("ingress");
    for case in ["docker-allowed", "docker-denied", "docker-authorization"] {
        auth.script(case, example_rules);
    }
    let send = |request: Request| {
        runtime
            .block_on(host_tests::client::send(port, &request))
            .unwrap_or_else(|e| panic!("{e}\nEnvoy log:\n{}", envoy.log()))
    };

    let allowed = send(
        Request::get("/hello")
            .case("docker-allowed")
            .header("x-ext-authz", "allow"),
    );
    assert_eq!(allowed.status, 200, "{}", allowed.body_text());
    let upstream = backend.requests("docker-allowed");
    assert_eq!(upstream.len(), 1);
    assert_eq!(
        upstream[0].header("x-ext-authz-check-result").as_deref(),
        Some("allowed")
    );

    let also_allowed = send(
        Request::get("/hello")
            .case("docker-authorization")
            .header("authorization", "authorize me"),
    );
    assert_eq!(also_allowed.status, 200);

    let denied = send(Request::get("/hello").case("docker-denied"));
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.header("x-ext-authz-check-result").as_deref(),
        Some("denied")
    );
    assert_eq!(denied.body_text(), "denied by ext_authz\n");
    assert!(
        backend.requests("docker-denied").is_empty(),
        "a denied request reached the backend"
    );
    assert_eq!(auth.checks("docker-denied").len(), 1);
}
