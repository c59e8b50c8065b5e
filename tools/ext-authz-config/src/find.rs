//! Finds the plugin configurations in a document: the document itself, the `spec.pluginConfig` of an
//! Istio `WasmPlugin`, the `spec.wasm[].config` of an Envoy Gateway `EnvoyExtensionPolicy`, or the
//! `configuration` of every Wasm HTTP filter of an Envoy bootstrap that loads this module.

use crate::yaml::{Kind, Node, Numbers, Style};

/// The `@type` of a Wasm HTTP filter's `typed_config`.
pub const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";
const STRUCT_TYPE: &str = "type.googleapis.com/google.protobuf.Struct";
/// The plugin name this project's configs use, and the word its module files carry.
const PLUGIN_NAME: &str = "ext_authz";

/// One plugin configuration, as the filter will receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// Where it is, for people: `WasmPlugin "foo/ext-authz"`, `wasm filter "ext_authz" at ...`.
    pub origin: String,
    /// The line of the field that holds it.
    pub line: usize,
    /// What the filter gets, or why it cannot get anything.
    pub json: Result<String, String>,
    /// How a field path inside the config maps back to a line.
    pub lines: Lines,
    /// Advice that does not make the config wrong.
    pub warnings: Vec<String>,
}

/// Maps a field path of a plugin config to a line of the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Lines {
    /// The config is this YAML or JSON tree of the file.
    Tree(Node),
    /// The config is JSON text inside a string; `tree` is that text loaded, when it loads, and
    /// `first_line` is the file line of the text's first line (`None` when the string's lines are
    /// not the file's: a quoted or folded string).
    Embedded {
        tree: Option<Node>,
        first_line: Option<usize>,
        string_line: usize,
        /// Columns before the text's in the file: a literal block's indentation.
        indent: Option<usize>,
    },
}

impl Lines {
    /// The file line of the field at `path`.
    pub fn line_of(&self, path: &str) -> usize {
        self.position_of(path).0
    }

    /// The file line and, when the file's columns are the config's, column of the field at `path`.
    pub fn position_of(&self, path: &str) -> (usize, Option<usize>) {
        match self {
            Self::Tree(node) => {
                let (line, column) = node.position_of(path);
                (line, Some(column))
            }
            Self::Embedded {
                tree,
                first_line,
                string_line,
                indent,
            } => match (tree, first_line) {
                (Some(tree), Some(first)) => {
                    let (line, column) = tree.position_of(path);
                    (first + line - 1, indent.map(|indent| indent + column))
                }
                _ => (*string_line, None),
            },
        }
    }
}

/// What a document turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// The plugin configurations in it (a bootstrap may hold none: then it is an error).
    Configs(Vec<PluginConfig>),
    /// A Kubernetes object of another kind, such as the auth server's Deployment.
    OtherObject { kind: String, line: usize },
    /// An Envoy config with no Wasm filter of this module.
    NoFilter { line: usize, skipped: Vec<String> },
}

/// Looks at one document. `whole_text` is the document's own text when it is the whole file and
/// is JSON: then a bare plugin config is checked byte for byte as written.
pub fn find(doc: &Node, whole_text: Option<&str>) -> Found {
    if let (Some(kind), Some(_)) = (
        doc.get("kind").and_then(Node::as_str),
        doc.get("apiVersion"),
    ) {
        if kind == "WasmPlugin" {
            return Found::Configs(vec![wasm_plugin(doc)]);
        }
        if kind == "EnvoyExtensionPolicy" {
            let configs = crate::envoy_gateway::extension_policy(doc);
            if !configs.is_empty() {
                return Found::Configs(configs);
            }
        }
        return Found::OtherObject {
            kind: kind.to_owned(),
            line: doc.line_of("kind"),
        };
    }
    let mut filters = Vec::new();
    walk(doc, &mut String::new(), &mut filters);
    let is_envoy = !filters.is_empty()
        || ["static_resources", "dynamic_resources", "admin", "node"]
            .iter()
            .any(|k| doc.get(k).is_some());
    if !is_envoy {
        let json = whole_text.map_or_else(
            || doc.to_json(Numbers::AsWritten).to_string(),
            str::to_owned,
        );
        return Found::Configs(vec![PluginConfig {
            origin: "plugin configuration".into(),
            line: doc.line,
            json: Ok(json),
            lines: Lines::Tree(doc.clone()),
            warnings: Vec::new(),
        }]);
    }
    let mut configs = Vec::new();
    let mut skipped = Vec::new();
    for (path, filter) in filters {
        match wasm_filter(&path, filter) {
            Ok(config) => configs.push(config),
            Err(note) => skipped.push(note),
        }
    }
    if configs.is_empty() {
        return Found::NoFilter {
            line: doc.line,
            skipped,
        };
    }
    Found::Configs(configs)
}

/// Collects every `typed_config` (or `Any`) of a Wasm HTTP filter, with the path of the object
/// that holds it.
fn walk<'a>(node: &'a Node, path: &mut String, out: &mut Vec<(String, &'a Node)>) {
    match &node.kind {
        Kind::Map(entries) => {
            if node.get("@type").and_then(Node::as_str) == Some(WASM_FILTER_TYPE) {
                out.push((path.clone(), node));
                return;
            }
            for entry in entries {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&entry.key);
                walk(&entry.value, path, out);
                path.truncate(len);
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The plugin config of one Wasm filter, or why it is not this module's.
fn wasm_filter(path: &str, typed_config: &Node) -> Result<PluginConfig, String> {
    let config = typed_config.get("config");
    let name = config
        .and_then(|c| c.get("name"))
        .and_then(Node::as_str)
        .unwrap_or_default();
    let root_id = config
        .and_then(|c| c.get("root_id"))
        .and_then(Node::as_str)
        .unwrap_or_default();
    let code = config.and_then(|c| c.get("vm_config")).map(code_location);
    let ours = name == PLUGIN_NAME
        || root_id == PLUGIN_NAME
        || code.as_deref().is_some_and(|c| {
            let c = c.to_ascii_lowercase();
            c.contains("ext_authz") || c.contains("ext-authz")
        });
    let origin = format!("wasm filter {name:?} at {path}");
    if !ours {
        return Err(format!(
            "line {}: skipped {origin}: neither named {PLUGIN_NAME:?} nor loading an ext_authz module",
            typed_config.line
        ));
    }
    let Some(config) = config else {
        return Ok(PluginConfig {
            origin,
            line: typed_config.line,
            json: Err("typed_config has no `config` (the Wasm PluginConfig)".into()),
            lines: Lines::Tree(typed_config.clone()),
            warnings: Vec::new(),
        });
    };
    let mut warnings = Vec::new();
    let policy = config.get("failure_policy").and_then(Node::as_str);
    let fail_open = matches!(
        config.get("fail_open").map(|n| &n.kind),
        Some(Kind::Bool(true))
    );
    if policy == Some("FAIL_OPEN") || fail_open {
        warnings.push(
            "the Wasm filter fails open: if the VM fails, requests skip authorization \
             (FAIL_CLOSED or FAIL_RELOAD keep it)"
                .into(),
        );
    }
    let Some(configuration) = config.entry("configuration") else {
        return Ok(PluginConfig {
            origin,
            line: config.line,
            json: Ok(String::new()),
            lines: Lines::Tree(config.clone()),
            warnings,
        });
    };
    let any = &configuration.value;
    let type_url = any.get("@type").and_then(Node::as_str).unwrap_or_default();
    let value = any.get("value");
    let (json, lines) = match (type_url, value) {
        (STRING_VALUE_TYPE, Some(value)) => match &value.kind {
            Kind::String { text, style } => (Ok(text.clone()), embedded(text, value, *style)),
            _ => (
                Err("configuration.value must be a string holding the JSON config".into()),
                Lines::Tree(value.clone()),
            ),
        },
        (STRING_VALUE_TYPE, None) => (Ok(String::new()), Lines::Tree(any.clone())),
        // Struct has a JSON mapping of its own, so an Any holds it under `value` too; Envoy hands
        // it to the filter printed as JSON.
        (STRUCT_TYPE, Some(value)) if value.is_map() => (
            Ok(value.to_json(Numbers::Struct).to_string()),
            Lines::Tree(value.clone()),
        ),
        _ => (
            Err(format!(
                "configuration must be a google.protobuf.StringValue holding the JSON config \
                 (or a Struct), not {type_url:?}"
            )),
            Lines::Tree(any.clone()),
        ),
    };
    Ok(PluginConfig {
        origin,
        line: configuration.key_line,
        json,
        lines,
        warnings,
    })
}

/// Where a VmConfig's code comes from: a file name or a URI.
fn code_location(vm_config: &Node) -> String {
    let code = vm_config.get("code");
    let local = code
        .and_then(|c| c.get("local"))
        .and_then(|l| l.get("filename"))
        .and_then(Node::as_str);
    let remote = code
        .and_then(|c| c.get("remote"))
        .and_then(|r| r.get("http_uri"))
        .and_then(|h| h.get("uri"))
        .and_then(Node::as_str);
    local.or(remote).unwrap_or_default().to_owned()
}

fn embedded(text: &str, value: &Node, style: Style) -> Lines {
    Lines::Embedded {
        tree: crate::yaml::load(text)
            .ok()
            .and_then(|docs| docs.into_iter().next()),
        first_line: (style == Style::Literal || !text.contains('\n')).then_some(value.line),
        string_line: value.line,
        indent: (style == Style::Literal).then(|| value.column - 1),
    }
}

/// `spec.pluginConfig`, as Istio hands it to the filter: a Struct printed as JSON.
fn wasm_plugin(doc: &Node) -> PluginConfig {
    let metadata = doc.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Node::as_str)
        .unwrap_or_default();
    let origin = match metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Node::as_str)
    {
        Some(ns) => format!("WasmPlugin \"{ns}/{name}\" spec.pluginConfig"),
        None => format!("WasmPlugin {name:?} spec.pluginConfig"),
    };
    let spec = doc.get("spec");
    let mut warnings = Vec::new();
    if spec
        .and_then(|s| s.get("failStrategy"))
        .and_then(Node::as_str)
        == Some("FAIL_OPEN")
    {
        warnings.push(
            "failStrategy FAIL_OPEN: if the VM fails, requests skip authorization \
             (FAIL_CLOSE or FAIL_RELOAD keep it)"
                .into(),
        );
    }
    match spec.and_then(|s| s.entry("pluginConfig")) {
        Some(entry) if entry.value.is_map() => PluginConfig {
            origin,
            line: entry.key_line,
            json: Ok(entry.value.to_json(Numbers::Struct).to_string()),
            lines: Lines::Tree(entry.value.clone()),
            warnings,
        },
        Some(entry) => PluginConfig {
            origin,
            line: entry.key_line,
            json: Err("spec.pluginConfig must be a mapping".into()),
            lines: Lines::Tree(entry.value.clone()),
            warnings,
        },
        // Istio then sends no configuration at all.
        None => PluginConfig {
            origin,
            line: spec.map_or(doc.line, |s| s.line),
            json: Ok(String::new()),
            lines: Lines::Tree(spec.cloned().unwrap_or_else(|| doc.clone())),
            warnings,
        },
    }
}
