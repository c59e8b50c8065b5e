//! The JSON Schema of the plugin configuration, committed as `schema/ext_authz.schema.json` for
//! editors (completion, hover docs) and CI checks.
//!
//! It is derived from the filter's own serde types (`ext_authz_filter::config::json_schema`), then
//! given what serde knows and schemars does not: each snake_case field is also accepted in
//! lowerCamelCase (the config's aliases, as protobuf JSON allows), but not both at once.

use serde_json::{json, Map, Value};

/// Where the committed schema lives, from the workspace root.
pub const COMMITTED_PATH: &str = "schema/ext_authz.schema.json";

/// The schema, as committed (pretty JSON with a trailing newline).
pub fn render() -> String {
    let mut text = serde_json::to_string_pretty(&generate()).unwrap_or_default();
    text.push('\n');
    text
}

/// The schema as a value.
pub fn generate() -> Value {
    let mut schema = ext_authz_filter::config::json_schema().to_value();
    add_camel_case(&mut schema);
    // The words the filter's errors use, so that an editor's hover says what the checker says.
    if let Some(Value::Object(duration)) = schema.pointer_mut("/$defs/ProtoDuration") {
        duration.insert(
            "description".into(),
            json!(format!(
                "A protobuf JSON duration: {}, such as \"0.25s\".",
                ext_authz_filter::config::duration::DURATION_FORM
            )),
        );
    }
    if let Value::Object(root) = &mut schema {
        root.insert("title".into(), json!("ext_authz wasm filter configuration"));
        root.insert(
            "description".into(),
            json!(
                "The configuration of the ext_authz proxy-wasm filter: the Wasm filter's \
                 `configuration` string in Envoy, `spec.pluginConfig` in an Istio WasmPlugin. \
                 A subset of Envoy's native ext_authz filter config, with the same field names. \
                 Generated from the filter's config types; `ext-authz-config check` also checks \
                 what a schema cannot (durations of at least 1 ms, the length of cluster name \
                 and authority together)."
            ),
        );
    }
    schema
}

/// Adds `fooBar` beside every `foo_bar` property of every object schema.
fn add_camel_case(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            for value in object.values_mut() {
                add_camel_case(value);
            }
            alias_properties(object);
        }
        Value::Array(items) => items.iter_mut().for_each(add_camel_case),
        _ => {}
    }
}

fn alias_properties(object: &mut Map<String, Value>) {
    let Some(Value::Object(properties)) = object.get_mut("properties") else {
        return;
    };
    let pairs: Vec<(String, String)> = properties
        .keys()
        .filter(|k| k.contains('_'))
        .map(|k| (k.clone(), camel_case(k)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    for (snake, camel) in &pairs {
        if let Some(property) = properties.get(snake).cloned() {
            properties.insert(camel.clone(), property);
        }
    }
    // Requirements name the snake_case spelling; either spelling meets them.
    let mut rules = Vec::new();
    if let Some(Value::Array(names)) = object.remove("required") {
        rules.push(requirement(&names, &pairs));
    }
    for keyword in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(branches)) = object.get_mut(keyword) {
            for branch in branches.iter_mut() {
                if let Some(Value::Array(names)) = branch.get("required").cloned() {
                    *branch = requirement(&names, &pairs);
                }
            }
        }
    }
    // Never both spellings of one field: serde calls that a duplicate field.
    for (snake, camel) in &pairs {
        rules.push(json!({"not": {"required": [snake, camel]}}));
    }
    let mut all_of = match object.remove("allOf") {
        Some(Value::Array(existing)) => existing,
        _ => Vec::new(),
    };
    all_of.extend(rules);
    object.insert("allOf".into(), Value::Array(all_of));
}

/// `{"required": names}`, where a name with a camelCase alias is met by either spelling.
fn requirement(names: &[Value], pairs: &[(String, String)]) -> Value {
    let mut plain = Vec::new();
    let mut either = Vec::new();
    for name in names {
        match pairs
            .iter()
            .find(|(snake, _)| Some(snake.as_str()) == name.as_str())
        {
            Some((snake, camel)) => {
                either.push(json!({"anyOf": [{"required": [snake]}, {"required": [camel]}]}))
            }
            None => plain.push(name.clone()),
        }
    }
    match (plain.is_empty(), either.len()) {
        (true, 1) => either.remove(0),
        (true, _) => json!({ "allOf": either }),
        (false, 0) => json!({ "required": plain }),
        (false, _) => {
            either.push(json!({ "required": plain }));
            json!({ "allOf": either })
        }
    }
}

/// `grpc_service` -> `grpcService`.
pub fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
