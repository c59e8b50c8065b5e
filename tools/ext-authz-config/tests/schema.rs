//! The committed JSON Schema (`schema/ext_authz.schema.json`): generated from the filter's config
//! types and up to date, it accepts every config the examples use and the camelCase spellings the
//! filter takes, and rejects the bad configs a schema can tell.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{example_files, good_files, plugin_configs, workspace_root, BAD};
use ext_authz_config::schema::{self, camel_case, COMMITTED_PATH};
use ext_authz_config::yaml::{self, Numbers};
use ext_authz_filter::config::Config;
use serde_json::Value;

fn committed() -> Value {
    let text = std::fs::read_to_string(workspace_root().join(COMMITTED_PATH)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&committed()).unwrap()
}

fn schema_errors(validator: &jsonschema::Validator, config: &Value) -> Vec<String> {
    validator
        .iter_errors(config)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_committed_schema_is_up_to_date() {
    let committed =
        std::fs::read_to_string(workspace_root().join(COMMITTED_PATH)).unwrap_or_default();
    assert!(
        committed == schema::render(),
        "{COMMITTED_PATH} is stale: the config types changed. Regenerate it with\n  \
         cargo run -p ext-authz-config -- schema > {COMMITTED_PATH}"
    );
}

#[test]
fn the_schema_is_valid_json_schema() {
    let schema = committed();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::meta::validate(&schema).unwrap();
}

/// The good corpus and every plugin config of the examples, as JSON values.
fn accepted_configs() -> Vec<(String, Value)> {
    let mut configs = Vec::new();
    for file in good_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc = yaml::load(&text).unwrap().remove(0);
        configs.push((file.display().to_string(), doc.to_json(Numbers::AsWritten)));
    }
    let mut from_examples = 0;
    for file in example_files() {
        for (origin, json) in plugin_configs(&file) {
            let config: Value = serde_json::from_str(&json).unwrap();
            configs.push((origin, config));
            from_examples += 1;
        }
    }
    assert!(
        from_examples >= 3,
        "the examples' plugin configs were found"
    );
    configs
}

#[test]
fn the_schema_accepts_every_example_config() {
    let validator = validator();
    for (origin, config) in accepted_configs() {
        Config::parse(config.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{origin}: the filter refuses it: {e}"));
        let errors = schema_errors(&validator, &config);
        assert!(errors.is_empty(), "{origin}: {errors:#?}");
    }
}

/// Every key the schema knows with an underscore, spelled in camelCase.
fn to_camel_case(value: &Value, names: &[String]) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = if names.contains(k) {
                        camel_case(k)
                    } else {
                        k.clone()
                    };
                    (key, to_camel_case(v, names))
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| to_camel_case(v, names)).collect())
        }
        other => other.clone(),
    }
}

fn property_names(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                out.extend(properties.keys().filter(|k| k.contains('_')).cloned());
            }
            map.values().for_each(|v| property_names(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| property_names(v, out)),
        _ => {}
    }
}

#[test]
fn camel_case_spellings_are_accepted_by_the_filter_and_the_schema() {
    let validator = validator();
    let mut names = Vec::new();
    property_names(&committed(), &mut names);
    for (origin, config) in accepted_configs() {
        let camel = to_camel_case(&config, &names);
        Config::parse(camel.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{origin} in camelCase: the filter refuses it: {e}"));
        let errors = schema_errors(&validator, &camel);
        assert!(errors.is_empty(), "{origin} in camelCase: {errors:#?}");
    }
}

#[test]
fn the_schema_rejects_the_bad_configs_it_can_tell() {
    let validator = validator();
    for bad in BAD {
        let config: Value = serde_json::from_str(bad.json).unwrap();
        assert!(Config::parse(bad.json.as_bytes()).is_err(), "{}", bad.name);
        let valid = validator.is_valid(&config);
        if bad.schema_catches {
            assert!(!valid, "{}: the schema accepts it", bad.name);
        } else {
            // The checker catches these; if the schema learns to, move them over.
            assert!(
                valid,
                "{}: the schema now rejects it: set schema_catches",
                bad.name
            );
        }
    }
}

#[test]
fn the_schema_describes_durations_in_the_words_of_the_errors() {
    let schema = committed();
    let description = schema
        .pointer("/$defs/ProtoDuration/description")
        .and_then(Value::as_str)
        .unwrap();
    let form = ext_authz_filter::config::duration::DURATION_FORM;
    assert!(description.contains(form), "{description}");
    let error = Config::parse(
        br#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}, "timeout": "0.25"}}"#,
    )
    .unwrap_err();
    assert!(error.reason.contains(form), "{error}");
}
