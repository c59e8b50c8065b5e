//! Checks every plugin configuration of a file with the filter's own parser
//! (`ext_authz_filter::config::Config::parse_all`), so the verdict and the messages are the
//! filter's, and places every error, not only the first, at the line and column of its field.

use std::fmt;

use ext_authz_filter::config::Config;

use crate::find::{self, Found, Lines, PluginConfig};
use crate::yaml;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub line: usize,
    /// The column of the field on its line, when the file's columns are the config's.
    pub column: Option<usize>,
    pub severity: Severity,
    /// For an error: the field path inside the plugin config (empty for the whole config).
    pub field: String,
    pub message: String,
    /// Which plugin config of the file, for people.
    pub origin: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    Note,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Note => "note",
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// The findings of one file, in line order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The report as printed, each line prefixed with `file`.
    pub fn render(&self, file: &str) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let field = if f.field.is_empty() {
                String::new()
            } else {
                format!("{}: ", f.field)
            };
            let origin = if f.origin.is_empty() {
                String::new()
            } else {
                format!(" [{}]", f.origin)
            };
            let place = match f.column {
                Some(column) => format!("{}:{column}", f.line),
                None => f.line.to_string(),
            };
            out.push_str(&format!(
                "{file}:{place}: {}: {field}{}{origin}\n",
                f.severity, f.message
            ));
        }
        let errors = self.errors().count();
        match errors {
            0 => out.push_str("OK\n"),
            1 => out.push_str("1 error\n"),
            n => out.push_str(&format!("{n} errors\n")),
        }
        out
    }
}

/// Checks a JSON or YAML file: a plugin config, an Envoy bootstrap, or Kubernetes manifests with
/// Istio `WasmPlugin`s or Envoy Gateway `EnvoyExtensionPolicy`s.
pub fn check(text: &str) -> Report {
    let mut report = Report::default();
    let docs = match yaml::load(text) {
        Ok(docs) => docs,
        // JSON that YAML refuses (a duplicate key): the filter reads it, so judge it as it does.
        Err(_) if serde_json::from_str::<serde_json::Value>(text).is_ok() => {
            let config = PluginConfig {
                origin: "plugin configuration".into(),
                line: 1,
                json: Ok(text.to_owned()),
                lines: Lines::Tree(yaml::Node {
                    line: 1,
                    column: 1,
                    kind: yaml::Kind::Null,
                }),
                warnings: Vec::new(),
            };
            check_one(&config, &mut report);
            return report;
        }
        Err(error) => {
            report.findings.push(Finding {
                line: error.line,
                column: None,
                severity: Severity::Error,
                field: String::new(),
                message: format!("is neither JSON nor YAML: {}", error.message),
                origin: String::new(),
            });
            return report;
        }
    };
    // A file that is one JSON document is checked as written, byte for byte.
    let whole_json = (docs.len() == 1 && serde_json::from_str::<serde_json::Value>(text).is_ok())
        .then_some(text);
    let mut configs = 0;
    for doc in &docs {
        match find::find(doc, whole_json) {
            Found::Configs(found) => {
                for config in found {
                    configs += 1;
                    check_one(&config, &mut report);
                }
            }
            Found::OtherObject { .. } => {}
            Found::NoFilter { line, skipped } => {
                for note in skipped {
                    report.findings.push(Finding {
                        line,
                        column: None,
                        severity: Severity::Note,
                        field: String::new(),
                        message: note,
                        origin: String::new(),
                    });
                }
                report.findings.push(Finding {
                    line,
                    column: None,
                    severity: Severity::Error,
                    field: String::new(),
                    message: format!(
                        "an Envoy config with no wasm filter of this module (a filter with \
                         `@type: {}` named \"ext_authz\" or loading an ext_authz .wasm)",
                        find::WASM_FILTER_TYPE
                    ),
                    origin: String::new(),
                });
                configs += 1;
            }
        }
    }
    if configs == 0 {
        report.findings.push(Finding {
            line: 1,
            column: None,
            severity: Severity::Error,
            field: String::new(),
            message: "no plugin configuration found: expected a plugin config, an Envoy \
                      bootstrap with the ext_authz wasm filter, an Istio WasmPlugin or an Envoy Gateway \
                      EnvoyExtensionPolicy"
                .into(),
            origin: String::new(),
        });
    }
    report.findings.sort_by_key(|f| (f.line, f.column));
    report
}

fn check_one(config: &PluginConfig, report: &mut Report) {
    for warning in &config.warnings {
        report.findings.push(Finding {
            line: config.line,
            column: None,
            severity: Severity::Warning,
            field: String::new(),
            message: warning.clone(),
            origin: config.origin.clone(),
        });
    }
    let json = match &config.json {
        Ok(json) => json,
        Err(reason) => {
            report.findings.push(Finding {
                line: config.line,
                column: None,
                severity: Severity::Error,
                field: String::new(),
                message: reason.clone(),
                origin: config.origin.clone(),
            });
            return;
        }
    };
    let errors = match Config::parse_all(json.as_bytes()) {
        Ok(_) => {
            report.findings.push(Finding {
                line: config.line,
                column: None,
                severity: Severity::Ok,
                field: String::new(),
                message: "the filter accepts this configuration".into(),
                origin: config.origin.clone(),
            });
            return;
        }
        Err(errors) => errors,
    };
    // Every error, each where its field is, as the filter's log lists them at load.
    for error in errors {
        let (line, column) = if error.field.is_empty() {
            (config.line, None)
        } else {
            config.lines.position_of(&error.field)
        };
        report.findings.push(Finding {
            line,
            column,
            severity: Severity::Error,
            field: error.field,
            message: error.reason,
            origin: config.origin.clone(),
        });
    }
}
