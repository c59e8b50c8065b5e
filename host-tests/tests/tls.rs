//! Over TLS and mutual TLS, with certificates the test makes itself: the auth server learns the
//! peers' principals and the SNI as native ext_authz tells them, field by field.

use std::sync::OnceLock;

use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use host_tests::envoy::{native_ext_authz, wasm_filter, AUTH_CLUSTER};
use host_tests::tls::{TestPki, CLIENT_SPIFFE_ID, SERVER_NAME, SERVICE_NAME};
use host_tests::{compare, tls, Harness, Listener, Request};
use serde_json::json;

/// The certificates, made once per test binary before its Envoy starts.
fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| {
        TestPki::create(&std::env::temp_dir().join(format!("ext-authz-tls-{}", std::process::id())))
    })
}

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        let pki = pki();
        let config = json!({"grpc_service": {"envoy_grpc": {"cluster_name": AUTH_CLUSTER}, "timeout": "2s"},
                            "include_tls_session": true});
        vec![
            Listener::new("native_tls", vec![native_ext_authz(&config)])
                .tls(pki.transport_socket(false)),
            Listener::new("wasm_tls", vec![wasm_filter(&config)]).tls(pki.transport_socket(false)),
            Listener::new("native_mtls", vec![native_ext_authz(&config)])
                .tls(pki.transport_socket(true)),
            Listener::new("wasm_mtls", vec![wasm_filter(&config)]).tls(pki.transport_socket(true)),
        ]
    })
}

/// The parts of a CheckRequest TLS decides.
fn tls_view(request: &CheckRequest) -> (String, String, Option<String>) {
    let attributes = request.attributes.clone().unwrap_or_default();
    (
        attributes.source.map(|p| p.principal).unwrap_or_default(),
        attributes
            .destination
            .map(|p| p.principal)
            .unwrap_or_default(),
        attributes.tls_session.map(|t| t.sni),
    )
}

/// Sends one request over TLS to the native and the wasm listener; returns the wasm one's check
/// after asserting that both checks are the same.
fn same_over_tls(native: &str, wasm: &str, mutual: bool) -> CheckRequest {
    let (h, pki) = (harness(), pki());
    let connector = pki.connector(mutual);
    let mut checks = Vec::new();
    for listener in [native, wasm] {
        let case = h.case(listener);
        let request = Request::get("/secure").case(&case);
        let response = h
            .block_on(tls::send(
                &connector,
                h.envoy.port(listener),
                SERVICE_NAME,
                &request,
            ))
            .unwrap_or_else(|e| panic!("{listener}: {e}"));
        assert_eq!(response.status, 200, "{listener}");
        let check = h.auth.checks(&case).pop().expect("a check");
        checks.push((
            compare::check(&check),
            tls_view(&check.request),
            check.request,
        ));
    }
    assert_eq!(
        checks[1].1, checks[0].1,
        "principals and SNI: wasm (left), native (right)"
    );
    assert_eq!(checks[1].0, checks[0].0, "the rest of the CheckRequest");
    checks.swap_remove(1).2
}

#[test]
fn tls_gives_the_local_principal_and_the_sni() {
    let request = same_over_tls("native_tls", "wasm_tls", false);
    let (source, destination, sni) = tls_view(&request);
    assert_eq!(source, "", "no client certificate, no source principal");
    assert_eq!(destination, SERVER_NAME, "the server certificate's DNS SAN");
    assert_eq!(sni.as_deref(), Some(SERVICE_NAME));
    let scheme = request
        .attributes
        .and_then(|a| a.request)
        .and_then(|r| r.http)
        .map(|h| h.scheme);
    assert_eq!(scheme.as_deref(), Some("https"));
}

#[test]
fn mutual_tls_gives_the_client_principal() {
    let request = same_over_tls("native_mtls", "wasm_mtls", true);
    let (source, destination, _) = tls_view(&request);
    assert_eq!(source, CLIENT_SPIFFE_ID, "the client certificate's URI SAN");
    assert_eq!(destination, SERVER_NAME);
}
