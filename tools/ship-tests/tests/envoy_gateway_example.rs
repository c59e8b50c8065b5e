//! The Envoy Gateway example (`examples/envoy-gateway`) fits together: the plugin config names
//! the cluster that Envoy Gateway makes for the auth server's HTTPRoute rule
//! (`httproute/<namespace>/<route>/rule/<index>`, Envoy Gateway 1.9's naming of a route rule's
//! destination), that cluster speaks HTTP/2, the policies target objects of the example, and the
//! route-level policy repeats the Gateway-level check before its own. The schemas are checked in
//! `manifests.rs`, the plugin configs by the filter's own parser here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::Value;
use ship_tests::{load, workspace_root, yaml_files, YamlFile};

fn objects() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for file in yaml_files("examples/envoy-gateway") {
        let name = file
            .strip_prefix(workspace_root())
            .unwrap()
            .display()
            .to_string();
        match load(&file) {
            Ok(YamlFile::Kubernetes(objects)) => {
                out.extend(objects.into_iter().map(|o| (name.clone(), o)));
            }
            other => panic!("{name} is not Kubernetes objects: {other:?}"),
        }
    }
    out
}

fn find<'a>(objects: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .map(|(_, o)| o)
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in examples/envoy-gateway"))
}

/// The cluster Envoy Gateway makes for the rule of an HTTPRoute that sends to `service`, by its
/// naming rule (irRouteDestinationName in internal/gatewayapi/helpers.go of v1.9.0).
fn cluster_of(objects: &[(String, Value)], service: &str) -> String {
    let mut found = Vec::new();
    for route in objects
        .iter()
        .map(|(_, o)| o)
        .filter(|o| o["kind"] == "HTTPRoute")
    {
        for (index, rule) in route["spec"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let refs = rule["backendRefs"].as_array().unwrap();
            if refs.iter().any(|r| r["name"] == service) {
                // One backend without filters: one cluster for the rule, not one per backend.
                assert_eq!(refs.len(), 1, "{rule}");
                assert!(refs[0].get("filters").is_none(), "{rule}");
                found.push(format!(
                    "httproute/{}/{}/rule/{index}",
                    route["metadata"]["namespace"].as_str().unwrap(),
                    route["metadata"]["name"].as_str().unwrap()
                ));
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "one route rule sends to {service}: {found:?}"
    );
    found.remove(0)
}

/// Every `spec.wasm[]` entry of the example's policies, by policy name.
fn wasm_entries<'a>(objects: &'a [(String, Value)], policy: &str) -> &'a Vec<Value> {
    find(objects, "EnvoyExtensionPolicy", policy)["spec"]["wasm"]
        .as_array()
        .unwrap()
}

#[test]
fn the_plugin_config_names_the_cluster_envoy_gateway_makes() {
    let objects = objects();
    let service = find(&objects, "Service", "ext-authz");
    let namespace = service["metadata"]["namespace"].as_str().unwrap();
    let port = &service["spec"]["ports"][0];
    // HTTP/2 to the gRPC server: Envoy Gateway reads it from the Service port's appProtocol.
    assert_eq!(port["appProtocol"], "kubernetes.io/h2c");
    let cluster = cluster_of(&objects, "ext-authz");
    assert_eq!(cluster, "httproute/foo/ext-authz/rule/0");
    // The route sends to the Service port the server listens on.
    let route = find(&objects, "HTTPRoute", "ext-authz");
    assert_eq!(
        route["spec"]["rules"][0]["backendRefs"][0]["port"],
        port["port"]
    );
    let deployment = find(&objects, "Deployment", "ext-authz");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let listen = format!("0.0.0.0:{}", container["ports"][0]["containerPort"]);
    assert!(container["command"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| *a == listen.as_str()));
    assert_eq!(container["ports"][0]["name"], port["targetPort"]);

    let mut grpc_entries = 0;
    for (file, policy) in objects
        .iter()
        .filter(|(_, o)| o["kind"] == "EnvoyExtensionPolicy")
    {
        for entry in policy["spec"]["wasm"].as_array().unwrap() {
            // Fail closed when the VM fails.
            assert_eq!(entry["failOpen"], false, "{file}");
            let grpc = &entry["config"]["grpc_service"]["envoy_grpc"];
            if grpc.is_null() {
                continue;
            }
            grpc_entries += 1;
            assert_eq!(grpc["cluster_name"], cluster.as_str(), "{file}");
            assert_eq!(
                grpc["authority"],
                format!("ext-authz.{namespace}.svc.cluster.local"),
                "{file}"
            );
        }
        assert_eq!(policy["metadata"]["namespace"], namespace, "{file}");
    }
    assert_eq!(
        grpc_entries, 3,
        "the Gateway policy, its HTTP twin, the admin policy's first"
    );
}

#[test]
fn the_policies_target_the_example_and_stack_as_documented() {
    let objects = objects();
    let gateway = find(&objects, "Gateway", "eg");
    assert!(objects.iter().any(|(_, o)| o["kind"] == "GatewayClass"
        && o["metadata"]["name"] == gateway["spec"]["gatewayClassName"]));
    for (_, route) in objects.iter().filter(|(_, o)| o["kind"] == "HTTPRoute") {
        assert_eq!(route["spec"]["parentRefs"][0]["name"], "eg");
    }
    let target = |policy: &str| {
        let target = &find(&objects, "EnvoyExtensionPolicy", policy)["spec"]["targetRefs"][0];
        assert_eq!(target["group"], "gateway.networking.k8s.io");
        let kind = target["kind"].as_str().unwrap().to_owned();
        let name = target["name"].as_str().unwrap().to_owned();
        find(&objects, &kind, &name);
        (kind, name)
    };
    assert_eq!(target("ext-authz"), ("Gateway".into(), "eg".into()));
    assert_eq!(
        target("ext-authz-admin"),
        ("HTTPRoute".into(), "admin".into())
    );

    // The two Gateway-level policies differ only in where the module comes from.
    let files: Vec<&String> = objects
        .iter()
        .filter(|(_, o)| {
            o["kind"] == "EnvoyExtensionPolicy" && o["metadata"]["name"] == "ext-authz"
        })
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        files.len(),
        2,
        "extension-policy.yaml and extension-policy-http.yaml"
    );
    let entry_of = |file: &str| {
        objects
            .iter()
            .find(|(f, _)| Path::new(f).ends_with(file))
            .map(|(_, o)| &o["spec"]["wasm"][0])
            .unwrap()
    };
    let image = entry_of("extension-policy.yaml");
    let http = entry_of("extension-policy-http.yaml");
    assert_eq!(image["code"]["type"], "Image");
    assert_eq!(http["code"]["type"], "HTTP");
    assert!(http["code"]["http"]["sha256"].is_string());
    assert_eq!(image["config"], http["config"]);
    // /healthz passes unchecked.
    assert_eq!(
        image["config"]["routes"][0],
        serde_json::json!({"match": {"path": "/healthz"}, "disabled": true})
    );

    // The route-level policy replaces the Gateway's on its route, so it repeats that check first.
    let admin = wasm_entries(&objects, "ext-authz-admin");
    assert_eq!(admin.len(), 2);
    assert_eq!(admin[0]["config"], image["config"]);
    assert_eq!(admin[0]["code"], image["code"]);
    assert_eq!(admin[1]["code"], image["code"]);
    assert!(admin[1]["config"]["steps"].is_array());
    // Each entry is a filter of its own: names differ within a policy.
    assert_ne!(admin[0]["name"], admin[1]["name"]);
    // No mergeType: it would replace the Gateway's wasm list, not add to it.
    assert!(
        find(&objects, "EnvoyExtensionPolicy", "ext-authz-admin")["spec"]
            .get("mergeType")
            .is_none()
    );
}

#[test]
fn the_config_checker_accepts_every_plugin_config_of_the_example() {
    let mut oks = 0;
    for file in yaml_files("examples/envoy-gateway") {
        let text = std::fs::read_to_string(&file).unwrap();
        let report = ext_authz_config::check::check(&text);
        let name = file.display().to_string();
        if name.contains("policy") {
            assert!(report.is_ok(), "{}", report.render(&name));
            oks += report
                .findings
                .iter()
                .filter(|f| f.severity == ext_authz_config::check::Severity::Ok)
                .count();
        }
    }
    assert_eq!(
        oks, 4,
        "ext-authz (twice) and the admin policy's two entries"
    );
}
