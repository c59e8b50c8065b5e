//! The filter's metrics as Prometheus scrapes them: after allowed, denied, failed, disabled and
//! refused requests through a real Envoy, `/stats/prometheus` shows every name that the README's
//! Stats table documents, with the count of what was sent. The README is the one list of names:
//! the Grafana dashboard's test (`tools/ship-tests/tests/dashboard.rs`) reads the same table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::auth::v3::OkHttpResponse;
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value as ProtoValue};
use host_tests::auth_server::{allow, allow_with, deny, set_header};
use host_tests::envoy::{
    admin_get, wasm_filter, workspace_root, AUTH_CLUSTER, DOWN_CLUSTER, HTTP_AUTH_CLUSTER,
};
use host_tests::{AuthAction, Harness, Listener, Request};
use serde_json::{json, Value};

/// A documented metric: its Prometheus name and its type (`counter` or `histogram`).
struct Documented {
    name: String,
    kind: String,
}

/// The rows of the README's Stats table: `| \`prometheus_name\` | \`envoy name\` | type | ... |`.
fn documented() -> Vec<Documented> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Stats\n")
        .nth(1)
        .expect("README.md has a ## Stats section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            Documented {
                name: cells[1].trim_matches('`').to_owned(),
                kind: cells[3].to_owned(),
            }
        })
        .collect()
}

/// `/stats/prometheus` as `series -> value`, the series with its labels as Envoy writes them.
fn scrape(h: &Harness) -> HashMap<String, f64> {
    admin_get(h.envoy.admin_port, "/stats/prometheus")
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn grpc(cluster: &str) -> Value {
    json!({"grpc_service": {"envoy_grpc": {"cluster_name": cluster}, "timeout": "2s"}})
}

#[test]
fn every_documented_metric_is_scraped_with_its_count() {
    let mut fail_open = grpc(DOWN_CLUSTER);
    fail_open["failure_mode_allow"] = json!(true);
    let mut health = grpc(AUTH_CLUSTER);
    health["routes"] = json!([{"match": {"path": "/healthz"}, "disabled": true}]);
    let mut validating = grpc(AUTH_CLUSTER);
    validating["validate_mutations"] = json!(true);
    let mut shadow = grpc(AUTH_CLUSTER);
    shadow["shadow_mode"] = json!(true);
    let mut shadow_down = grpc(DOWN_CLUSTER);
    shadow_down["shadow_mode"] = json!(true);
    let retrying = json!({"http_service": {
        "server_uri": {"uri": "http://authz.local", "cluster": HTTP_AUTH_CLUSTER, "timeout": "2s"},
        "authorization_request": {"allowed_headers": {"patterns": [{"exact": "x-case"}, {"prefix": "x-auth-"}]}},
        "retry_policy": {"num_retries": 1, "retry_on": "5xx"}
    }});
    let mut prefixed = grpc(AUTH_CLUSTER);
    prefixed["stat_prefix"] = json!("tenant_a");
    let mut cached = grpc(AUTH_CLUSTER);
    cached["decision_cache"] = json!({"key": {"headers": ["x-case"]}, "stale_if_error": "300s"});
    let h = Harness::start(&[
        Listener::new("checked", vec![wasm_filter(&grpc(AUTH_CLUSTER))]),
        Listener::new("down", vec![wasm_filter(&grpc(DOWN_CLUSTER))]),
        Listener::new("fail_open", vec![wasm_filter(&fail_open)]),
        Listener::new("health", vec![wasm_filter(&health)]),
        Listener::new("validating", vec![wasm_filter(&validating)]),
        Listener::new("prefixed", vec![wasm_filter(&prefixed)]),
        Listener::new("cached", vec![wasm_filter(&cached)]),
        Listener::new("shadow", vec![wasm_filter(&shadow)]),
        Listener::new("shadow_down", vec![wasm_filter(&shadow_down)]),
        Listener::new("retrying", vec![wasm_filter(&retrying)]),
    ]);

    // A different number of each, so that two names swapped would show.
    let send = |listener: &str, request: Request, times: usize, status: u16| {
        for _ in 0..times {
            assert_eq!(h.send(listener, &request).status, status, "{listener}");
        }
    };
    send("checked", Request::get("/"), 4, 200);
    let denied = h.case("denied");
    h.auth
        .respond(&denied, AuthAction::respond(deny(403, vec![], "no")));
    send("checked", Request::get("/").case(&denied), 3, 403);
    send("down", Request::get("/"), 2, 403);
    send("fail_open", Request::get("/"), 5, 200);
    send("health", Request::get("/healthz"), 6, 200);
    // A header value with a line break, refused under validate_mutations.
    let invalid = h.case("invalid");
    h.auth.respond(
        &invalid,
        AuthAction::respond(allow_with(OkHttpResponse {
            headers: vec![set_header("x-user", "a\r\nx-admin: yes")],
            ..Default::default()
        })),
    );
    send("validating", Request::get("/").case(&invalid), 7, 500);
    send("prefixed", Request::get("/"), 1, 200);
    // The decision cache: a miss and 8 hits; an allow kept 1 ms, then served stale when the
    // server fails; two denials, not kept.
    send("cached", Request::get("/").case(&h.case("hits")), 9, 200);
    let stale = h.case("stale");
    let calls = std::sync::atomic::AtomicUsize::new(0);
    h.auth.script(&stale, move |_| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            return AuthAction::Fail(tonic::Status::unavailable("down"));
        }
        let ttl = ProtoValue {
            kind: Some(Kind::StringValue("0.001s".into())),
        };
        let mut allow = allow();
        allow.dynamic_metadata = Some(Struct {
            fields: [("cache_ttl".to_owned(), ttl)].into_iter().collect(),
        });
        AuthAction::respond(allow)
    });
    send("cached", Request::get("/").case(&stale), 1, 200);
    // Waits out the entry's millisecond of freshness.
    std::thread::sleep(Duration::from_millis(50));
    send("cached", Request::get("/").case(&stale), 1, 200);
    send("cached", Request::get("/").case(&denied), 2, 403);

    // Shadow mode: 2 denials and 1 failure, none enforced.
    send("shadow", Request::get("/").case(&denied), 2, 200);
    send("shadow_down", Request::get("/"), 1, 200);
    // An HTTP server that fails its first answer: one retry, then an allow.
    let retried = h.case("retried");
    send(
        "retrying",
        Request::get("/api/pets/1")
            .case(&retried)
            .header("x-auth-fail-first", "1"),
        1,
        200,
    );

    // Counters, and the histogram's observations: one per call that ended, whether it allowed,
    // denied, failed or was refused (4 + 3 + 2 + 5 + 7; 1 + 1 + 1 + 2 of the cache; 2 + 1 in
    // shadow mode; 2 tries of the retried one); disabled routes and cache hits make no call. A hit
    // or a stale allow counts in ok as the answer did.
    let expected: HashMap<&str, f64> = [
        ("ext_authz_ok", 4.0 + 9.0 + 2.0 + 1.0),
        ("ext_authz_denied", 3.0 + 2.0 + 2.0),
        ("ext_authz_error", 7.0 + 1.0),
        ("ext_authz_failure_mode_allowed", 5.0),
        ("ext_authz_disabled", 6.0),
        ("ext_authz_invalid", 7.0),
        ("ext_authz_cache_hit", 8.0),
        ("ext_authz_cache_miss", 5.0),
        ("ext_authz_cache_stale_served", 1.0),
        ("ext_authz_cache_store", 2.0),
        ("ext_authz_cache_skip", 3.0),
        ("ext_authz_shadow_denied", 2.0),
        ("ext_authz_shadow_error", 1.0),
        ("ext_authz_retry", 1.0),
        ("ext_authz_check_latency_ms", 31.0),
    ]
    .into_iter()
    .collect();

    let documented = documented();
    let names: Vec<&str> = documented.iter().map(|d| d.name.as_str()).collect();
    let mut expected_names: Vec<&str> = expected.keys().copied().collect();
    expected_names.sort_unstable();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected_names, "the README's Stats table");

    // Envoy writes histograms at its stats flush (every 5 s by default): wait for one that has
    // every observation (a flush in the middle of the requests above has only some).
    let observations = expected["ext_authz_check_latency_ms"];
    let deadline = Instant::now() + Duration::from_secs(90);
    let scraped = loop {
        let scraped = scrape(&h);
        let flushed = scraped
            .get("ext_authz_check_latency_ms_count{}")
            .is_some_and(|count| *count >= observations);
        if flushed || Instant::now() > deadline {
            break scraped;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut ours: Vec<(&String, &f64)> = scraped
        .iter()
        .filter(|(s, _)| s.starts_with("ext_authz"))
        .collect();
    ours.sort_by(|a, b| a.0.cmp(b.0));
    for metric in &documented {
        let want = expected[metric.name.as_str()];
        match metric.kind.as_str() {
            // No `envoy_` prefix, no `wasmcustom` namespace, no labels.
            "counter" => assert_eq!(
                scraped.get(&format!("{}{{}}", metric.name)),
                Some(&want),
                "{}; scraped: {ours:#?}",
                metric.name
            ),
            "histogram" => {
                let name = &metric.name;
                assert_eq!(
                    scraped.get(&format!("{name}_count{{}}")),
                    Some(&want),
                    "{name}; scraped: {ours:#?}"
                );
                assert_eq!(
                    scraped.get(&format!("{name}_bucket{{le=\"+Inf\"}}")),
                    Some(&want),
                    "{name}"
                );
                // Every call here took more than nothing and less than the 2 s timeout.
                let sum = scraped[&format!("{name}_sum{{}}")];
                assert!(sum > 0.0 && sum < want * 2000.0, "{name}_sum {sum}");
                let within_timeout = scraped[&format!("{name}_bucket{{le=\"2500\"}}")];
                assert_eq!(within_timeout, want, "{name} buckets");
            }
            other => panic!("{}: unknown type {other} in the README", metric.name),
        }
    }

    // A stat_prefix goes between `ext_authz_` and the name.
    assert_eq!(scraped.get("ext_authz_tenant_a_ok{}"), Some(&1.0));
    assert_eq!(scraped.get("ext_authz_tenant_a_denied{}"), Some(&0.0));
    assert!(scraped.contains_key("ext_authz_tenant_a_check_latency_ms_count{}"));
    // Envoy's own stats for the plugin keep the prefix and its namespace.
    assert!(scraped.contains_key("envoy_wasm_ext_authz_vm_reload{}"));
}
