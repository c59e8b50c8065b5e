use host_tests::envoy::{native_ext_authz, AUTH_CLUSTER};
use host_tests::{Harness, Listener, Request};
use serde_json::json;
#[test]
fn probe() {
    let g = json!({"envoy_grpc": {"cluster_name": AUTH_CLUSTER}});
    let a = json!({"grpc_service": g, "allowed_headers": {"patterns": [{"exact": "x-a"}, {"prefix": "x-p"}, {"exact": "x-case"}]}});
    let d = json!({"grpc_service": g, "disallowed_headers": {"patterns": [{"exact": "x-a"}, {"exact": ":path"}]}});
    let ad = json!({"grpc_service": g, "allowed_headers": {"patterns": [{"prefix": "x-"}]}, "disallowed_headers": {"patterns": [{"exact": "x-a"}]}});
    let raw = json!({"grpc_service": g, "encode_raw_headers": true});
    let h = Harness::start(&[
        Listener::new("a", vec![native_ext_authz(&a)]),
        Listener::new("d", vec![native_ext_authz(&d)]),
        Listener::new("ad", vec![native_ext_authz(&ad)]),
        Listener::new("raw", vec![native_ext_authz(&raw)]),
    ]);
    for l in ["a", "d", "ad", "raw"] {
        let case = h.case("p");
        h.send(
            l,
            &Request::get("/p?q=1")
                .case(&case)
                .header("x-a", "1")
                .header("x-a", "2")
                .header("x-pb", "3")
                .header("X-Up", "u")
                .header("y-b", [b'a', 0xe9]),
        );
        for c in h.auth.checks(&case) {
            let mut keys: Vec<_> = c
                .http()
                .headers
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            keys.sort();
            println!(
                "{l}: path={:?} method={:?} host={:?} headers={keys:?}",
                c.http().path,
                c.http().method,
                c.http().host
            );
            if let Some(m) = &c.http().header_map {
                println!(
                    "  header_map={:?}",
                    m.headers
                        .iter()
                        .map(|h| (h.key.clone(), h.value.clone(), h.raw_value.clone()))
                        .collect::<Vec<_>>()
                );
            }
        }
    }
}
