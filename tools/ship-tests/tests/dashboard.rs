//! The Grafana dashboard (`examples/grafana/ext_authz-dashboard.json`) queries only series the
//! filter emits. The list of what it emits is the README's Stats table, which
//! `host-tests/tests/prometheus.rs` checks against a real Envoy's `/stats/prometheus`; this test
//! reads that table, parses every PromQL expression of the dashboard and checks each metric name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use ship_tests::workspace_root;

const DASHBOARD: &str = "examples/grafana/ext_authz-dashboard.json";

/// `(name, type)` of each row of the README's Stats table.
fn documented() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme.split("\n## Stats\n").nth(1).expect("## Stats");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[3].to_owned())
        })
        .collect()
}

/// The series a PromQL expression selects: every identifier that is not a function, a keyword,
/// a label (in `{...}` or `by (...)`), a range (`[...]`) or a string.
fn metric_names(expr: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
        // Aggregations, which may be followed by `by (...)` before their `(`.
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    // After `by`/`without`/`on`/`ignoring`/`group_*`, the next `( ... )` holds labels.
    let mut labels_next = false;
    let skip_to = |from: usize, close: char| {
        let mut j = from + 1;
        while j < chars.len() && chars[j] != close {
            if chars[j] == '"' || chars[j] == '\'' {
                let quote = chars[j];
                j += 1;
                while j < chars.len() && chars[j] != quote {
                    j += if chars[j] == '\\' { 2 } else { 1 };
                }
            }
            j += 1;
        }
        assert!(j < chars.len(), "unclosed {close} in {expr}");
        j + 1
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_to(i, c),
            '{' => i = skip_to(i, '}'),
            '[' => i = skip_to(i, ']'),
            '(' if labels_next => {
                labels_next = false;
                i = skip_to(i, ')');
            }
            '$' => {
                // A Grafana variable such as $__rate_interval.
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            _ if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    let exponent = matches!(chars[i], 'e' | 'E');
                    i += 1;
                    if exponent && matches!(chars.get(i), Some('+' | '-')) {
                        i += 1;
                    }
                }
            }
            _ if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                let lower = word.to_ascii_lowercase();
                if matches!(
                    lower.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                ) {
                    labels_next = true;
                } else if next != Some(&'(') && !KEYWORDS.contains(&lower.as_str()) {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Every `expr` of the dashboard's panels (rows' panels included), with its panel's title.
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((title.clone(), expr.to_owned()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Whether a series is one the filter emits: a documented counter, or a documented histogram's
/// `_bucket`, `_sum` or `_count`.
fn emitted(name: &str, documented: &[(String, String)]) -> bool {
    documented.iter().any(|(metric, kind)| match kind.as_str() {
        "counter" => name == metric,
        "histogram" => ["_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| name.strip_suffix(suffix) == Some(metric)),
        _ => false,
    })
}

#[test]
fn the_parser_finds_the_series_and_nothing_else() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (le, pod) (rate(ext_authz_check_latency_ms_bucket{job=~"envoy|gw", le!="1"}[$__rate_interval])))"#
        ),
        ["ext_authz_check_latency_ms_bucket"]
    );
    assert_eq!(
        metric_names("sum(rate(a_total[5m])) / clamp_min(sum(rate(b[1m] offset 1h)) + 1e-9, 2) > bool 0.5 and on(x) c:recorded"),
        ["a_total", "b", "c:recorded"]
    );
    let documented = documented();
    assert!(emitted("ext_authz_ok", &documented));
    assert!(emitted("ext_authz_check_latency_ms_count", &documented));
    assert!(!emitted("ext_authz_oks", &documented));
    assert!(!emitted("ext_authz_ok_bucket", &documented));
    assert!(!emitted("envoy_ext_authz_ok", &documented));
}

#[test]
fn every_series_the_dashboard_queries_is_one_the_filter_emits() {
    let text = std::fs::read_to_string(workspace_root().join(DASHBOARD)).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let documented = documented();
    assert!(
        documented.len() >= 7,
        "the README's Stats table: {documented:?}"
    );
    let expressions = expressions(&dashboard);
    assert!(!expressions.is_empty(), "no queries in {DASHBOARD}");
    let mut queried = Vec::new();
    for (panel, expr) in &expressions {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{panel}: no series in {expr}");
        for name in names {
            assert!(
                emitted(&name, &documented),
                "{panel}: `{name}` in `{expr}` is not in the README's Stats table"
            );
            queried.push(name);
        }
    }
    // What the dashboard is for: each decision, the latency percentiles, the error ratio.
    for name in [
        "ext_authz_ok",
        "ext_authz_denied",
        "ext_authz_error",
        "ext_authz_failure_mode_allowed",
        "ext_authz_check_latency_ms_bucket",
    ] {
        assert!(queried.iter().any(|q| q == name), "no panel queries {name}");
    }
    let all: Vec<&str> = expressions.iter().map(|(_, e)| e.as_str()).collect();
    for quantile in ["0.5", "0.9", "0.99"] {
        assert!(
            all.iter()
                .any(|e| e.starts_with(&format!("histogram_quantile({quantile},"))),
            "no p{quantile} panel"
        );
    }
    // Each query reads the data source the importer picks.
    visit_targets(&dashboard, &mut |target| {
        assert_eq!(target["datasource"]["uid"], "${datasource}", "{target}");
    });
}

fn visit_targets(dashboard: &Value, f: &mut dyn FnMut(&Value)) {
    ship_tests::visit(&dashboard["panels"], &mut |object| {
        if let Some(targets) = object.get("targets").and_then(Value::as_array) {
            targets.iter().for_each(&mut *f);
        }
    });
}
