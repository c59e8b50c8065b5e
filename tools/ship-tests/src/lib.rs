//! Helpers for the tests of what ships (`tests/`): the repository's YAML files, loaded and sorted
//! by what they are.

use std::path::{Path, PathBuf};

use ext_authz_config::yaml::{self, Node, Numbers};
use serde_json::Value;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.yaml`/`.yml` file under `dir` (relative to the workspace root), sorted.
pub fn yaml_files(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&workspace_root().join(dir), &mut out);
    out.sort();
    out
}

/// What a YAML file of the repository is.
#[derive(Debug, Clone, PartialEq)]
pub enum YamlFile {
    /// An Envoy bootstrap.
    Envoy(Node),
    /// Kubernetes objects, as JSON.
    Kubernetes(Vec<Value>),
    /// A docker compose file.
    Compose(Node),
}

/// Loads and sorts a YAML file; `Err` says why it is none of the known kinds.
pub fn load(path: &Path) -> Result<YamlFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let docs = yaml::load(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let is_object = |d: &Node| d.get("apiVersion").is_some() && d.get("kind").is_some();
    if !docs.is_empty() && docs.iter().all(is_object) {
        return Ok(YamlFile::Kubernetes(
            docs.iter().map(|d| d.to_json(Numbers::AsWritten)).collect(),
        ));
    }
    match docs.as_slice() {
        [doc] if doc.get("services").is_some() => Ok(YamlFile::Compose(doc.clone())),
        [doc] if doc.get("static_resources").is_some() => Ok(YamlFile::Envoy(doc.clone())),
        _ => Err(format!(
            "{}: neither an Envoy bootstrap, Kubernetes objects nor a compose file",
            path.display()
        )),
    }
}

/// The `vm_config.code.local.filename` of every Wasm VM in an Envoy config.
pub fn module_files(envoy: &Value) -> Vec<String> {
    let mut out = Vec::new();
    visit(envoy, &mut |value| {
        if let Some(name) = value
            .pointer("/vm_config/code/local/filename")
            .and_then(Value::as_str)
        {
            out.push(name.to_owned());
        }
    });
    out
}

/// Calls `f` on every object of `value`, depth first.
pub fn visit(value: &Value, f: &mut dyn FnMut(&Value)) {
    match value {
        Value::Object(map) => {
            f(value);
            map.values().for_each(|v| visit(v, f));
        }
        Value::Array(items) => items.iter().for_each(|v| visit(v, f)),
        _ => {}
    }
}

/// As [`visit`], mutably.
pub fn visit_mut(value: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match value {
        Value::Object(_) => {
            f(value);
            if let Value::Object(map) = value {
                map.values_mut().for_each(|v| visit_mut(v, f));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| visit_mut(v, f)),
        _ => {}
    }
}
