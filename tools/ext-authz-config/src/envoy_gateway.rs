//! The plugin configs of an Envoy Gateway `EnvoyExtensionPolicy` (gateway.envoyproxy.io/v1alpha1):
//! each `spec.wasm[]` entry that loads this module, with its `config` as Envoy Gateway hands it to
//! the filter: the JSON as the API server stored it, in a StringValue (numbers as written).

use crate::find::{Lines, PluginConfig};
use crate::yaml::{Kind, Node, Numbers};

/// The words that mark an entry as this module's, in its name, root id or code URL.
const MARKS: [&str; 2] = ["ext_authz", "ext-authz"];

/// The configs of the policy's entries that load this module; none when no entry does.
pub fn extension_policy(doc: &Node) -> Vec<PluginConfig> {
    let metadata = doc.get("metadata");
    let field = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(Node::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let policy = match field("namespace").as_str() {
        "" => format!("EnvoyExtensionPolicy {:?}", field("name")),
        ns => format!("EnvoyExtensionPolicy \"{ns}/{}\"", field("name")),
    };
    let Some(Kind::Seq(entries)) = doc.get("spec").and_then(|s| s.get("wasm")).map(|w| &w.kind)
    else {
        return Vec::new();
    };
    entries
        .iter()
        .enumerate()
        .filter(|(_, entry)| is_ours(entry))
        .map(|(i, entry)| wasm_entry(&format!("{policy} spec.wasm[{i}]"), entry))
        .collect()
}

fn is_ours(entry: &Node) -> bool {
    let code = entry.get("code");
    let url = |source: &str| code.and_then(|c| c.get(source)).and_then(|s| s.get("url"));
    [
        entry.get("name"),
        entry.get("rootID"),
        url("image"),
        url("http"),
    ]
    .into_iter()
    .flatten()
    .filter_map(Node::as_str)
    .any(|text| {
        let text = text.to_ascii_lowercase();
        MARKS.iter().any(|mark| text.contains(mark))
    })
}

fn wasm_entry(origin: &str, entry: &Node) -> PluginConfig {
    let mut warnings = Vec::new();
    if matches!(
        entry.get("failOpen").map(|n| &n.kind),
        Some(Kind::Bool(true))
    ) {
        warnings.push(
            "failOpen: true: if the VM fails, or its config is refused, requests skip \
             authorization (leave it false)"
                .into(),
        );
    }
    let origin = origin.to_owned();
    match entry.entry("config") {
        Some(config) => PluginConfig {
            origin,
            line: config.key_line,
            json: Ok(config.value.to_json(Numbers::AsWritten).to_string()),
            lines: Lines::Tree(config.value.clone()),
            warnings,
        },
        // Envoy Gateway then hands over an empty configuration.
        None => PluginConfig {
            origin,
            line: entry.line,
            json: Ok(String::new()),
            lines: Lines::Tree(entry.clone()),
            warnings,
        },
    }
}
