//! `decoder_header_mutation_rules` and `validate_mutations` over an `http_service` answer, native
//! and wasm in one Envoy: every answer, gRPC or HTTP, goes through the same review, and the client,
//! the upstream and the response-code details must be the same as native's.

use host_tests::envoy::{native_ext_authz, wasm_filter, HTTP_AUTH_CLUSTER};
use host_tests::{compare, Harness, Listener, Request};
use serde_json::{json, Value};

fn config(rules: Value) -> Value {
    json!({
        "http_service": {
            "server_uri": {"uri": "http://authz.local", "cluster": HTTP_AUTH_CLUSTER, "timeout": "2s"},
            "authorization_request": {"allowed_headers": {"patterns": [{"prefix": "x-auth-"}, {"exact": "x-case"}]}},
            "authorization_response": {
                "allowed_upstream_headers": {"patterns": [{"exact": "x-user"}, {"exact": "x-other"}]},
                "allowed_upstream_headers_to_append": {"patterns": [{"exact": "x-appended"}]}
            }
        },
        "decoder_header_mutation_rules": rules
    })
}

/// Rule sets by name; each gets a native and a wasm listener.
fn rule_sets() -> Vec<(&'static str, Value)> {
    vec![
        (
            "fail",
            json!({"disallow_expression": {"regex": "x-user"}, "disallow_is_error": true}),
        ),
        ("drop", json!({"disallow_expression": {"regex": "x-user"}})),
        (
            "only_allowed",
            json!({"disallow_all": true, "allow_expression": {"regex": "x-user"}}),
        ),
        (
            "both_match",
            json!({"allow_expression": {"regex": "x-user"}, "disallow_expression": {"regex": "x-user"}, "disallow_is_error": true}),
        ),
    ]
}

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        rule_sets()
            .into_iter()
            .flat_map(|(name, rules)| {
                [
                    Listener::new(
                        &format!("native_{name}"),
                        vec![native_ext_authz(&config(rules.clone()))],
                    ),
                    Listener::new(&format!("wasm_{name}"), vec![wasm_filter(&config(rules))]),
                ]
            })
            .collect()
    })
}

#[test]
fn http_answers_are_reviewed_as_native_reviews_them() {
    let h = harness();
    // The server allows (`/api/pets/1`) and sets `x-user` and `x-other`, or appends `x-appended` to a
    // request that has it or lacks it.
    let answers = [
        (
            "user",
            vec![
                ("x-auth-echo-x-user", "mallory"),
                ("x-auth-echo-x-other", "o"),
            ],
        ),
        ("other", vec![("x-auth-echo-x-other", "o")]),
        (
            "append",
            vec![("x-auth-echo-x-appended", "more"), ("x-appended", "first")],
        ),
        ("append_absent", vec![("x-auth-echo-x-appended", "more")]),
    ];
    let mut compared = 0;
    for (rules, _) in rule_sets() {
        for (answer, headers) in &answers {
            let mut seen = Vec::new();
            for side in ["native", "wasm"] {
                let case = h.case(&format!("{rules}-{answer}-{side}"));
                let mut request = Request::get("/api/pets/1").case(&case);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let response = h.send(&format!("{side}_{rules}"), &request);
                let upstream = compare::requests(&h.backend.requests(&case));
                seen.push((case, compare::response(&response), upstream));
            }
            // The access log's response-code details, once each line is written.
            let views: Vec<_> = seen
                .into_iter()
                .map(|(case, response, upstream)| {
                    let details: Vec<String> =
                        h.access_log(&case, 1).into_iter().map(|l| l.1).collect();
                    (response, upstream, details)
                })
                .collect();
            assert_eq!(
                views[1], views[0],
                "{rules}, {answer}: wasm (left) differs from native (right)"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 16);
}
