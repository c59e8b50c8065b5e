#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::route::matcher::full_match_regex;

const HEADERS: [&str; 8] = [
    "x-allowed-a",
    "x-forbidden-a",
    "x-other",
    "x-envoy-foo",
    ":path",
    "host",
    ":authority",
    ":method",
];

fn rules(edit: impl FnOnce(&mut HeaderMutationRules)) -> HeaderMutationRules {
    let mut rules = HeaderMutationRules::default();
    edit(&mut rules);
    rules
}

fn regex(pattern: &str) -> Option<Regex> {
    Some(full_match_regex(pattern).unwrap())
}

/// Which of [`HEADERS`] a rule set lets a server set: `o` applied, `-` dropped.
fn writes(rules: &HeaderMutationRules) -> String {
    HEADERS
        .iter()
        .map(|name| match rules.check(Operation::Write, name, b"v") {
            Outcome::Apply => 'o',
            Outcome::Ignore => '-',
            Outcome::Fail => 'F',
        })
        .collect()
}

/// The table read off native 1.40, one request per cell, in the order of [`HEADERS`].
#[test]
fn writes_as_native_decides_them() {
    let table: Vec<(&str, HeaderMutationRules, &str)> = vec![
        ("{}", rules(|_| {}), "ooo-o---"),
        ("disallow_all", rules(|r| r.disallow_all = true), "--------"),
        (
            "disallow_system",
            rules(|r| r.disallow_system = true),
            "ooo-----",
        ),
        (
            "disallow_expression",
            rules(|r| r.disallow_expression = regex("x-forbidden.*")),
            "o-o-o---",
        ),
        (
            "allow_expression",
            rules(|r| r.allow_expression = regex("x-allowed.*")),
            "ooo-o---",
        ),
        ("allow_envoy", rules(|r| r.allow_envoy = true), "ooooo---"),
        (
            "disallow_all + allow_expression",
            rules(|r| {
                r.disallow_all = true;
                r.allow_expression = regex("x-allowed.*");
            }),
            "o-------",
        ),
        (
            "allow_all_routing",
            rules(|r| r.allow_all_routing = true),
            "ooo-oooo",
        ),
        (
            "allow_all_routing + disallow_system",
            rules(|r| {
                r.allow_all_routing = true;
                r.disallow_system = true;
            }),
            "ooo--o--",
        ),
        (
            "allow_expression of the system ones",
            rules(|r| r.allow_expression = regex("x-envoy-.*|host|:authority|:method")),
            "oooooooo",
        ),
        (
            "allow_envoy + disallow_system",
            rules(|r| {
                r.allow_envoy = true;
                r.disallow_system = true;
            }),
            "oooo----",
        ),
    ];
    for (name, rules, expected) in table {
        assert_eq!(writes(&rules), expected, "{name}");
        // disallow_is_error turns every drop into a failure, and nothing else.
        let mut erroring = rules.clone();
        erroring.disallow_is_error = true;
        assert_eq!(
            writes(&erroring),
            expected.replace('-', "F"),
            "{name} + error"
        );
    }
}

#[test]
fn values_are_checked_and_routing_headers_never_removed() {
    let open = rules(|r| r.allow_all_routing = true);
    assert_eq!(
        open.check(Operation::Write, "x-a", b"a\nb"),
        Outcome::Ignore
    );
    assert_eq!(open.check(Operation::Write, "x-a", b"a\tb"), Outcome::Apply);
    for name in [":path", "host", ":authority", ":method"] {
        assert_eq!(open.check(Operation::Remove, name, b""), Outcome::Ignore);
    }
    assert_eq!(open.check(Operation::Remove, "x-a", b""), Outcome::Apply);
    let strict = rules(|r| {
        r.disallow_expression = regex("x-forbidden.*");
        r.disallow_is_error = true;
    });
    assert_eq!(
        strict.check(Operation::Remove, "x-forbidden-a", b""),
        Outcome::Fail
    );
    assert_eq!(strict.check(Operation::Remove, "host", b""), Outcome::Fail);
    assert_eq!(strict.check(Operation::Write, "x-a", b"\0"), Outcome::Fail);
}

#[test]
fn query_text_needs_no_encoding() {
    assert!(is_query_text("aZ09*-._"));
    assert!(is_query_text(""));
    for text in ["a b", "a&b", "#", "=", "+", "%41", "~", "\u{e9}", "/", "?"] {
        assert!(!is_query_text(text), "{text:?}");
    }
}

#[test]
fn disallow_expression_wins_over_allow_expression() {
    let regex = |r: &str| Some(crate::route::matcher::full_match_regex(r).unwrap());
    let rules = HeaderMutationRules {
        allow_expression: regex("x-.*"),
        disallow_expression: regex("x-user"),
        disallow_is_error: true,
        ..HeaderMutationRules::default()
    };
    assert_eq!(rules.check(Operation::Write, "x-user", b"v"), Outcome::Fail);
    assert_eq!(
        rules.check(Operation::Write, "x-other", b"v"),
        Outcome::Apply
    );
}
