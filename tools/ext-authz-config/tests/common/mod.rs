//! What the checker and the schema tests share: the configs the filter refuses, and the configs
//! of the repository's examples.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ext_authz_config::find::{self, Found};
use ext_authz_config::yaml;

/// A plugin config the filter refuses: the field its error names, and whether the JSON Schema
/// can tell (some rules are beyond a schema: durations of at least 1 ms, two names' total length).
pub struct Bad {
    pub name: &'static str,
    pub json: &'static str,
    pub field: &'static str,
    pub schema_catches: bool,
}

const fn bad(
    name: &'static str,
    json: &'static str,
    field: &'static str,
    schema_catches: bool,
) -> Bad {
    Bad {
        name,
        json,
        field,
        schema_catches,
    }
}

pub const BAD: &[Bad] = &[
    bad("empty object", r#"{}"#, "grpc_service", true),
    bad("not an object", r#"[]"#, "", true),
    bad(
        "no envoy_grpc",
        r#"{"grpc_service": {}}"#,
        "grpc_service.envoy_grpc",
        true,
    ),
    bad(
        "empty cluster name",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": ""}}}"#,
        "grpc_service.envoy_grpc.cluster_name",
        true,
    ),
    bad(
        "unknown field",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "failure_mode": true}"#,
        "failure_mode",
        true,
    ),
    bad(
        "native field the filter refuses",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "filter_enabled": {}}"#,
        "filter_enabled",
        true,
    ),
    bad(
        "native setting the filter cannot honour",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "clear_route_cache": false}"#,
        "clear_route_cache",
        false,
    ),
    bad(
        "google_grpc",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}, "google_grpc": {}}}"#,
        "grpc_service.google_grpc",
        true,
    ),
    bad(
        "duration in ms",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}, "timeout": "500ms"}}"#,
        "grpc_service.timeout",
        true,
    ),
    bad(
        "zero timeout",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}, "timeout": "0s"}}"#,
        "grpc_service.timeout",
        false,
    ),
    bad(
        "status out of range",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "status_on_error": {"code": 99}}"#,
        "status_on_error.code",
        true,
    ),
    bad(
        "metadata key with a space",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}, "initial_metadata": [{"key": "bad key"}]}}"#,
        "grpc_service.initial_metadata[0].key",
        true,
    ),
    bad(
        "string for a boolean",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "failure_mode_allow": "yes"}"#,
        "failure_mode_allow",
        true,
    ),
    bad(
        "transport V2",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "transport_api_version": "V2"}"#,
        "transport_api_version",
        true,
    ),
    bad(
        "two auth servers",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "http_service": {"server_uri": {"uri": "http://a", "cluster": "b"}}}"#,
        "http_service",
        true,
    ),
    bad(
        "both spellings of a field",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "grpcService": {"envoyGrpc": {"clusterName": "a"}}}"#,
        "",
        true,
    ),
    bad(
        "a list where a message is expected",
        r#"{"grpc_service": {"envoy_grpc": ["ext_authz"]}}"#,
        "grpc_service.envoy_grpc",
        true,
    ),
    bad(
        "empty context extension key",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "context_extensions": {"": "x"}}"#,
        "context_extensions",
        true,
    ),
    bad(
        "route with two path rules",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "routes": [{"match": {"prefix": "/a", "path": "/b"}}]}"#,
        "routes[0].match",
        false,
    ),
];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/configs/good/*`: plugin configs the filter accepts, by file name.
pub fn good_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/good");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The repository's YAML files with plugin configs: `envoy/` and `examples/`.
pub fn example_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&workspace_root().join("envoy"), &mut files);
    walk(&workspace_root().join("examples"), &mut files);
    files.sort();
    files
}

/// Every plugin config (as the filter gets it) in an Envoy bootstrap or a WasmPlugin of the file,
/// with where it is.
pub fn plugin_configs(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let docs = yaml::load(&text).unwrap();
    let whole = (docs.len() == 1 && serde_json::from_str::<serde_json::Value>(&text).is_ok())
        .then_some(text.as_str());
    let mut out = Vec::new();
    for doc in &docs {
        if let Found::Configs(configs) = find::find(doc, whole) {
            for config in configs
                .into_iter()
                .filter(|c| c.origin != "plugin configuration")
            {
                let where_ = format!("{} ({})", path.display(), config.origin);
                out.push((where_, config.json.unwrap()));
            }
        }
    }
    out
}
