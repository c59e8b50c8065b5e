//! What an access log sees of a check that did not let the request through, from each filter in
//! the same Envoy: native marks such a reply `UAEX` in `%RESPONSE_FLAGS%`; a wasm filter has no
//! ABI call to set a response flag, so its replies have none, and `%RESPONSE_CODE_DETAILS%`
//! (the same for both) is what to log and match on instead.

use host_tests::auth_server::deny;
use host_tests::envoy::{native_ext_authz, wasm_filter, AUTH_CLUSTER, DOWN_CLUSTER};
use host_tests::{AuthAction, Harness, Listener, Request};
use serde_json::json;

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        let config = |cluster: &str| json!({"grpc_service": {"envoy_grpc": {"cluster_name": cluster}, "timeout": "5s"}});
        vec![
            Listener::new("native", vec![native_ext_authz(&config(AUTH_CLUSTER))]),
            Listener::new("wasm", vec![wasm_filter(&config(AUTH_CLUSTER))]),
            Listener::new("native_down", vec![native_ext_authz(&config(DOWN_CLUSTER))]),
            Listener::new("wasm_down", vec![wasm_filter(&config(DOWN_CLUSTER))]),
        ]
    })
}

/// (status, details, flags) of one request through `listener`, from the access log.
fn logged(listener: &str, action: Option<AuthAction>) -> (u16, String, String) {
    let h = harness();
    let case = h.case(listener);
    if let Some(action) = action {
        h.auth.respond(&case, action);
    }
    h.send(listener, &Request::get("/").case(&case));
    let lines = h.access_log_lines(&case, 1);
    assert_eq!(lines.len(), 1, "{listener}: one access log line");
    let line = &lines[0];
    (line.status, line.details.clone(), line.flags.clone())
}

#[test]
fn a_denial_is_uaex_natively_and_flagless_from_wasm_with_the_same_details() {
    let denial = || Some(AuthAction::respond(deny(401, Vec::new(), "no")));
    assert_eq!(
        logged("native", denial()),
        (401, "ext_authz_denied".to_owned(), "UAEX".to_owned())
    );
    assert_eq!(
        logged("wasm", denial()),
        (401, "ext_authz_denied".to_owned(), "-".to_owned())
    );
}

#[test]
fn a_failed_check_is_uaex_natively_and_flagless_from_wasm_with_the_same_details() {
    assert_eq!(
        logged("native_down", None),
        (403, "ext_authz_error".to_owned(), "UAEX".to_owned())
    );
    assert_eq!(
        logged("wasm_down", None),
        (403, "ext_authz_error".to_owned(), "-".to_owned())
    );
}

#[test]
fn an_allowed_request_has_no_flag_from_either() {
    for listener in ["native", "wasm"] {
        let (status, _, flags) = logged(listener, None);
        assert_eq!((status, flags.as_str()), (200, "-"), "{listener}");
    }
}
