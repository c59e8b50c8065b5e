//! `validate_mutations` and `decoder_header_mutation_rules` against native: servers that ask to
//! set invalid or forbidden headers, through native ext_authz and through this filter in the same
//! Envoy, with each rule set. The client, the upstream and the access log must match; the wasm
//! filter's counters must count what it refused.

use envoy_types::pb::envoy::config::core::v3::QueryParameter;
use envoy_types::pb::envoy::service::auth::v3::OkHttpResponse;
use host_tests::auth_server::{allow_with, deny, set_header};
use host_tests::envoy::{native_ext_authz, wasm_filter, AUTH_CLUSTER};
use host_tests::{compare, AuthAction, Harness, Listener, Request};
use serde_json::{json, Value};

fn validating() -> Value {
    json!({"validate_mutations": true, "status_on_error": {"code": 503}})
}

/// The rule sets: a name, and the ExtAuthz fields that make it.
fn rule_sets() -> Vec<(&'static str, Value)> {
    vec![
        ("lenient", json!({})),
        ("validating", validating()),
        (
            "rules_default",
            json!({"decoder_header_mutation_rules": {}}),
        ),
        (
            "rules_strict",
            json!({"decoder_header_mutation_rules": {
                "disallow_system": true,
                "disallow_expression": {"regex": "x-forbidden.*"},
                "disallow_is_error": true
            }}),
        ),
        (
            "rules_routing",
            json!({"decoder_header_mutation_rules": {"allow_all_routing": true, "allow_envoy": true}}),
        ),
        // Each rule alone, and with disallow_system, as the README's table has them.
        (
            "rules_allow_expression",
            json!({"decoder_header_mutation_rules": {"allow_expression": {"regex": "x-allowed.*"}}}),
        ),
        (
            "rules_allow_expression_no_system",
            json!({"decoder_header_mutation_rules": {
                "allow_expression": {"regex": "x-allowed.*"},
                "disallow_system": true
            }}),
        ),
        (
            "rules_allow_envoy",
            json!({"decoder_header_mutation_rules": {"allow_envoy": true}}),
        ),
        (
            "rules_allow_envoy_no_system",
            json!({"decoder_header_mutation_rules": {"allow_envoy": true, "disallow_system": true}}),
        ),
        (
            "rules_allow_all_routing",
            json!({"decoder_header_mutation_rules": {"allow_all_routing": true}}),
        ),
        (
            "rules_allow_all_routing_no_system",
            json!({"decoder_header_mutation_rules": {"allow_all_routing": true, "disallow_system": true}}),
        ),
        (
            "rules_allow_list",
            json!({"decoder_header_mutation_rules": {
                "disallow_all": true,
                "allow_expression": {"regex": "x-allowed.*"}
            }}),
        ),
    ]
}

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        let mut listeners = Vec::new();
        for (name, fields) in rule_sets() {
            let mut config = json!({
                "grpc_service": {"envoy_grpc": {"cluster_name": AUTH_CLUSTER}, "timeout": "5s"},
                "stat_prefix": name
            });
            for (key, value) in fields.as_object().into_iter().flatten() {
                config[key] = value.clone();
            }
            listeners.push(Listener::new(
                &format!("native_{name}"),
                vec![native_ext_authz(&config)],
            ));
            listeners.push(Listener::new(
                &format!("wasm_{name}"),
                vec![wasm_filter(&config)],
            ));
        }
        // The counter test's own listener: the differential test sends to the others at the
        // same time, and the counters are read as exact deltas.
        let mut counted = json!({
            "grpc_service": {"envoy_grpc": {"cluster_name": AUTH_CLUSTER}, "timeout": "5s"},
            "stat_prefix": "counted"
        });
        for (key, value) in validating().as_object().into_iter().flatten() {
            counted[key] = value.clone();
        }
        listeners.push(Listener::new("wasm_counted", vec![wasm_filter(&counted)]));
        listeners
    })
}

fn sets(headers: &[(&str, &str)]) -> AuthAction {
    AuthAction::respond(allow_with(OkHttpResponse {
        headers: headers.iter().map(|(k, v)| set_header(k, v)).collect(),
        ..Default::default()
    }))
}

fn removes(names: &[&str]) -> AuthAction {
    AuthAction::respond(allow_with(OkHttpResponse {
        headers_to_remove: names.iter().map(|n| (*n).to_owned()).collect(),
        ..Default::default()
    }))
}

/// The answers every rule set gets. (What this filter refuses on purpose where native does not,
/// header injection into responses and empty header names, is in the unit tests.)
fn answers() -> Vec<(&'static str, AuthAction)> {
    vec![
        ("plain", sets(&[("x-other", "1")])),
        (
            "allowed and forbidden",
            sets(&[("x-allowed-a", "1"), ("x-forbidden-a", "2")]),
        ),
        ("x-envoy", sets(&[("x-envoy-foo", "1")])),
        ("path", sets(&[(":path", "/rewritten")])),
        ("host", sets(&[("host", "elsewhere.example")])),
        ("authority", sets(&[(":authority", "elsewhere.example")])),
        ("method", sets(&[(":method", "PUT")])),
        ("value with LF", sets(&[("x-nl", "a\nb")])),
        (
            "value with CR LF",
            sets(&[("x-crlf", "a\r\nx-injected: 1")]),
        ),
        ("value with NUL", sets(&[("x-nul", "a\0b")])),
        ("value with DEL", sets(&[("x-del", "a\x7fb")])),
        (
            "fine odd values",
            sets(&[
                ("x-tab", "a\tb"),
                ("x-utf8", "caf\u{e9}"),
                ("x-space", " v "),
            ]),
        ),
        ("name with a space", sets(&[("bad name", "v")])),
        ("name with a colon", sets(&[("x-colon:", "v")])),
        // Native's 503 text escapes CR and LF in the name it quotes.
        ("name with CR LF", sets(&[("x-a\r\nb", "v")])),
        ("name with LF and a tab", sets(&[("x-nl\n\tname", "v")])),
        (
            "name with odd bytes",
            sets(&[("x-q\"\\\0\x7f\u{e9}\x01\x0b\x0c'?", "v")]),
        ),
        ("upper-case name", sets(&[("X-Upper", "v")])),
        (
            "remove routing headers",
            removes(&[":path", "host", ":authority", ":method"]),
        ),
        (
            "remove forbidden",
            removes(&["x-forbidden-a", "x-allowed-a"]),
        ),
        ("remove invalid names", removes(&["bad name", "x-nl\nname"])),
        (
            "query needing encoding",
            AuthAction::respond(allow_with(OkHttpResponse {
                query_parameters_to_set: vec![QueryParameter {
                    key: "k".into(),
                    value: "a b".into(),
                }],
                ..Default::default()
            })),
        ),
        (
            "query plain",
            AuthAction::respond(allow_with(OkHttpResponse {
                query_parameters_to_set: vec![QueryParameter {
                    key: "k".into(),
                    value: "a.b-c_d*".into(),
                }],
                ..Default::default()
            })),
        ),
        (
            "denied with a bad header",
            AuthAction::respond(deny(401, vec![set_header("x-bad", "a\nb")], "no")),
        ),
        (
            "denied with odd fine headers",
            AuthAction::respond(deny(401, vec![set_header("x-tab", "a\tb")], "no")),
        ),
    ]
}

#[test]
fn every_rule_set_answers_as_native() {
    let h = harness();
    let request = || {
        Request::get("/m?z=1")
            .header("x-forbidden-a", "client")
            .header("x-allowed-a", "client")
    };
    let mut runs = Vec::new();
    for (rules, _) in rule_sets() {
        for (answer_name, answer) in answers() {
            let mut seen = Vec::new();
            // Without validate_mutations native writes a denial's headers as they are (header
            // injection); this filter refuses them. The validating set shows native's 500.
            if rules != "validating" && answer_name == "denied with a bad header" {
                continue;
            }
            for side in ["native", "wasm"] {
                let case = h.case(side);
                h.auth.respond(&case, answer.clone());
                let response = h.send(&format!("{side}_{rules}"), &request().case(&case));
                let upstream = compare::requests(&h.backend.requests(&case));
                seen.push((case, compare::response(&response), upstream));
            }
            runs.push((format!("{rules}: {answer_name}"), seen));
        }
    }
    let runs = runs
        .into_iter()
        .map(|(name, seen)| {
            let mut views = seen.into_iter().map(|(case, response, upstream)| {
                let details: Vec<String> =
                    h.access_log(&case, 1).into_iter().map(|l| l.1).collect();
                (response, upstream, details)
            });
            let (native, wasm) = (views.next(), views.next());
            (name, native, wasm)
        })
        .collect();
    compare::assert_runs_match(runs);
}

/// What the wasm filter refused counts in `invalid`, and a refused denial in `denied` too.
#[test]
fn refused_answers_count_as_invalid() {
    let h = harness();
    let stat = |name: &str| h.plugin_stat(&format!("ext_authz.counted.{name}"));
    let (invalid, denied, ok) = (stat("invalid"), stat("denied"), stat("ok"));
    for (answer, status) in [
        (sets(&[("x-nl", "a\nb")]), 500),
        (
            AuthAction::respond(deny(401, vec![set_header("x-bad", "a\nb")], "no")),
            500,
        ),
        (sets(&[("x-fine", "1")]), 200),
    ] {
        let case = h.case("counted");
        h.auth.respond(&case, answer);
        assert_eq!(
            h.send("wasm_counted", &Request::get("/").case(&case))
                .status,
            status
        );
    }
    assert_eq!(stat("invalid") - invalid, 2);
    assert_eq!(stat("denied") - denied, 1);
    assert_eq!(stat("ok") - ok, 1);
}
