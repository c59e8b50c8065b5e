//! Every Kubernetes manifest under `examples/` matches the vendored Kubernetes, Istio, Gateway API
//! and Envoy Gateway schemas (`schema/vendor/`, offline), and the Istio example's objects fit
//! together (the Envoy Gateway example's: `envoy_gateway_example.rs`): the WasmPlugin's
//! cluster is the auth server's Service port, its selector picks the backend and not the auth
//! server, and each Service reaches its Deployment's container port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use jsonschema::{Registry, Validator};
use serde_json::{json, Value};
use ship_tests::{load, workspace_root, yaml_files, YamlFile};

const K8S: &str = "schema/vendor/kubernetes-v1.35.0";
const ISTIO: &str = "schema/vendor/istio-1.30.3";
const ENVOY_GATEWAY: &str = "schema/vendor/envoy-gateway-1.9.0";

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(workspace_root().join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The validators by `(apiVersion, kind)`.
fn validators() -> Vec<((&'static str, &'static str), Validator)> {
    let definitions = read_json(&format!("{K8S}/_definitions.json"));
    let id = definitions["$id"].as_str().unwrap().to_owned();
    let registry = Registry::new()
        .add(id, definitions)
        .unwrap()
        .prepare()
        .unwrap();
    let build = |path: String| {
        jsonschema::options()
            .with_registry(&registry)
            .build(&read_json(&path))
            .unwrap()
    };
    vec![
        (
            ("apps/v1", "Deployment"),
            build(format!("{K8S}/deployment-apps-v1.json")),
        ),
        (("v1", "Service"), build(format!("{K8S}/service-v1.json"))),
        (
            ("extensions.istio.io/v1alpha1", "WasmPlugin"),
            build(format!("{ISTIO}/wasmplugin-extensions-v1alpha1.json")),
        ),
        (
            ("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy"),
            build(format!(
                "{ENVOY_GATEWAY}/envoyextensionpolicy-gateway-v1alpha1.json"
            )),
        ),
        (
            ("gateway.networking.k8s.io/v1", "GatewayClass"),
            build(format!(
                "{ENVOY_GATEWAY}/gatewayclass-gateway-networking-v1.json"
            )),
        ),
        (
            ("gateway.networking.k8s.io/v1", "Gateway"),
            build(format!(
                "{ENVOY_GATEWAY}/gateway-gateway-networking-v1.json"
            )),
        ),
        (
            ("gateway.networking.k8s.io/v1", "HTTPRoute"),
            build(format!(
                "{ENVOY_GATEWAY}/httproute-gateway-networking-v1.json"
            )),
        ),
    ]
}

fn schema_errors(validators: &[((&str, &str), Validator)], object: &Value) -> Vec<String> {
    let key = (
        object["apiVersion"].as_str().unwrap_or_default(),
        object["kind"].as_str().unwrap_or_default(),
    );
    let Some((_, validator)) = validators.iter().find(|(k, _)| *k == key) else {
        return vec![format!(
            "no schema vendored for {key:?}: add it to schema/vendor"
        )];
    };
    validator
        .iter_errors(object)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Every Kubernetes object of the examples, with its file.
fn manifests() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for file in yaml_files("examples") {
        if let Ok(YamlFile::Kubernetes(objects)) = load(&file) {
            let name = file
                .strip_prefix(workspace_root())
                .unwrap()
                .display()
                .to_string();
            out.extend(objects.into_iter().map(|o| (name.clone(), o)));
        }
    }
    out
}

#[test]
fn every_manifest_matches_its_schema() {
    let validators = validators();
    let manifests = manifests();
    let kinds: Vec<&str> = manifests
        .iter()
        .map(|(_, o)| o["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "Deployment",
        "Service",
        "WasmPlugin",
        "EnvoyExtensionPolicy",
        "Gateway",
        "GatewayClass",
        "HTTPRoute",
    ] {
        assert!(
            kinds.contains(&kind),
            "no {kind} among the examples: {kinds:?}"
        );
    }
    for (file, object) in &manifests {
        let errors = schema_errors(&validators, object);
        assert!(
            errors.is_empty(),
            "{file}: {} {}: {errors:#?}",
            object["kind"],
            object["metadata"]["name"]
        );
    }
}

#[test]
fn the_schemas_are_strict() {
    let validators = validators();
    let manifests = manifests();
    let find = |kind: &str| {
        manifests
            .iter()
            .find(|(_, o)| o["kind"] == kind)
            .map(|(_, o)| o.clone())
            .unwrap()
    };
    let mistakes: Vec<(&str, Value)> = vec![
        // Envoy's spelling, not Istio's.
        ("WasmPlugin", json!({"/spec/failStrategy": "FAIL_CLOSED"})),
        ("WasmPlugin", json!({"/spec/phase": "AUTHENTICATION"})),
        ("WasmPlugin", json!({"/spec/plugin_config": {}})),
        // metadata is the Kubernetes ObjectMeta, from the other vendored file.
        ("WasmPlugin", json!({"/metadata/label": {}})),
        ("Service", json!({"/spec/ports/0/port": "9001"})),
        (
            "Deployment",
            json!({"/spec/template/spec/containers/0/command": "example-auth-server"}),
        ),
        ("Deployment", json!({"/spec/replica": 1})),
        // Istio's spelling, not Envoy Gateway's.
        (
            "EnvoyExtensionPolicy",
            json!({"/spec/wasm/0/pluginConfig": {}}),
        ),
        (
            "EnvoyExtensionPolicy",
            json!({"/spec/wasm/0/code/type": "OCI"}),
        ),
        (
            "EnvoyExtensionPolicy",
            json!({"/spec/wasm/0/failOpen": "false"}),
        ),
        (
            "EnvoyExtensionPolicy",
            json!({"/spec/targetRefs/0/group": "gateway.networking.k8s.io/v1"}),
        ),
        ("EnvoyExtensionPolicy", json!({"/metadata/label": {}})),
        (
            "HTTPRoute",
            json!({"/spec/rules/0/backendRefs/0/port": "9001"}),
        ),
        ("HTTPRoute", json!({"/spec/parentRef": []})),
        ("Gateway", json!({"/spec/listeners/0/port": 70000})),
    ];
    for (kind, change) in mistakes {
        let mut object = find(kind);
        for (pointer, value) in change.as_object().unwrap() {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let parent = object.pointer_mut(parent).unwrap();
            match parent {
                Value::Array(items) => items[key.parse::<usize>().unwrap()] = value.clone(),
                Value::Object(map) => {
                    map.insert(key.to_owned(), value.clone());
                }
                _ => panic!("{pointer}"),
            }
        }
        assert!(
            !schema_errors(&validators, &object).is_empty(),
            "{kind} with {change} passed the schema"
        );
    }
}

fn object<'a>(manifests: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    manifests
        .iter()
        .map(|(_, o)| o)
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in examples/istio"))
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// The Service's port reaches a container port of a Deployment it selects.
fn assert_service_reaches(manifests: &[(String, Value)], service: &str, deployment: &str) -> u64 {
    let service = object(manifests, "Service", service);
    let deployment = object(manifests, "Deployment", deployment);
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert!(labels_match(&service["spec"]["selector"], pod_labels));
    let port = &service["spec"]["ports"][0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let target = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port["targetPort"] || p["containerPort"] == port["targetPort"])
        .unwrap_or_else(|| panic!("targetPort {} is no container port", port["targetPort"]));
    // The server listens on the port the Service sends to.
    let command: Vec<&str> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let listen = format!("0.0.0.0:{}", target["containerPort"]);
    assert!(
        command.contains(&listen.as_str()),
        "{command:?} does not listen on {listen}"
    );
    port["port"].as_u64().unwrap()
}

#[test]
fn the_istio_example_fits_together() {
    let manifests: Vec<(String, Value)> = manifests()
        .into_iter()
        .filter(|(file, _)| Path::new(file).starts_with("examples/istio"))
        .collect();
    let plugin = object(&manifests, "WasmPlugin", "ext-authz");
    let auth_port = assert_service_reaches(&manifests, "ext-authz", "ext-authz");
    assert_service_reaches(&manifests, "backend", "backend");

    // gRPC to the auth server needs HTTP/2, which Istio gives a port by its appProtocol.
    let auth_service = object(&manifests, "Service", "ext-authz");
    assert_eq!(auth_service["spec"]["ports"][0]["appProtocol"], "grpc");

    // The cluster Istio makes for that Service port.
    let namespace = auth_service["metadata"]["namespace"].as_str().unwrap();
    let host = format!("ext-authz.{namespace}.svc.cluster.local");
    let envoy_grpc = &plugin["spec"]["pluginConfig"]["grpc_service"]["envoy_grpc"];
    assert_eq!(
        envoy_grpc["cluster_name"],
        format!("outbound|{auth_port}||{host}")
    );
    assert_eq!(envoy_grpc["authority"], host);
    assert_eq!(plugin["metadata"]["namespace"], namespace);

    // The plugin runs in the backend's sidecar and never in the auth server's.
    let selector = &plugin["spec"]["selector"]["matchLabels"];
    let pods = |name: &str| {
        object(&manifests, "Deployment", name)["spec"]["template"]["metadata"]["labels"].clone()
    };
    assert!(labels_match(selector, &pods("backend")));
    assert!(!labels_match(selector, &pods("ext-authz")));
    assert_eq!(plugin["spec"]["phase"], "AUTHN");
    assert_ne!(plugin["spec"]["failStrategy"], "FAIL_OPEN");
}
