#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn view<'a>(headers: &'a [(&'a [u8], &'a [u8])]) -> RequestView<'a> {
    RequestView::new(headers)
}

fn request(method: &str, authority: &str, path: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (b":method".to_vec(), method.as_bytes().to_vec()),
        (b":authority".to_vec(), authority.as_bytes().to_vec()),
        (b":path".to_vec(), path.as_bytes().to_vec()),
    ]
}

fn matches(rule: &RouteMatch, headers: &[(Vec<u8>, Vec<u8>)]) -> bool {
    let borrowed: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    rule.matches(&view(&borrowed))
}

fn path_rule(path: PathMatch) -> RouteMatch {
    RouteMatch {
        path: Some(path),
        case_sensitive: true,
        ..Default::default()
    }
}

#[test]
fn path_rules_ignore_the_query_and_fragment() {
    let get = |path: &str| request("GET", "a.example", path);
    let prefix = path_rule(PathMatch::Prefix("/api".into()));
    assert!(matches(&prefix, &get("/api/v1?x=1")));
    assert!(matches(&prefix, &get("/apix")));
    assert!(!matches(&prefix, &get("/v1?/api")));

    let exact = path_rule(PathMatch::Exact("/health".into()));
    assert!(matches(&exact, &get("/health?verbose=1")));
    assert!(matches(&exact, &get("/health#top")));
    assert!(!matches(&exact, &get("/healthz")));

    let separated = path_rule(PathMatch::SeparatedPrefix("/api".into()));
    assert!(matches(&separated, &get("/api")));
    assert!(matches(&separated, &get("/api/v1")));
    assert!(matches(&separated, &get("/api?x")));
    assert!(!matches(&separated, &get("/apix")));

    let regex = path_rule(PathMatch::Regex(full_match_regex("/pets/[0-9]+").unwrap()));
    assert!(matches(&regex, &get("/pets/42?x=1")));
    assert!(
        !matches(&regex, &get("/pets/42/toys")),
        "a regex must match the whole path"
    );
}

#[test]
fn case_insensitive_paths() {
    let mut rule = path_rule(PathMatch::Prefix("/API".into()));
    assert!(!matches(&rule, &request("GET", "h", "/api/x")));
    rule.case_sensitive = false;
    assert!(matches(&rule, &request("GET", "h", "/api/x")));
}

#[test]
fn header_rules() {
    let mut headers = request("GET", "h", "/");
    headers.push((b"x-tenant".to_vec(), b"team-a".to_vec()));
    headers.push((b"x-multi".to_vec(), b"one".to_vec()));
    headers.push((b"x-multi".to_vec(), b"two".to_vec()));
    let value = |name: &str, kind: StringMatchKind, ignore_case: bool, invert: bool| RouteMatch {
        headers: vec![HeaderMatch {
            name: name.into(),
            rule: HeaderRule::Value(StringMatch { kind, ignore_case }),
            invert,
        }],
        ..Default::default()
    };
    assert!(matches(
        &value(
            "x-tenant",
            StringMatchKind::Exact("team-a".into()),
            false,
            false
        ),
        &headers
    ));
    assert!(!matches(
        &value(
            "x-tenant",
            StringMatchKind::Exact("TEAM-A".into()),
            false,
            false
        ),
        &headers
    ));
    assert!(matches(
        &value(
            "x-tenant",
            StringMatchKind::Exact("TEAM-A".into()),
            true,
            false
        ),
        &headers
    ));
    assert!(matches(
        &value(
            "x-tenant",
            StringMatchKind::Prefix("team".into()),
            false,
            false
        ),
        &headers
    ));
    assert!(matches(
        &value(
            "x-tenant",
            StringMatchKind::Suffix("-a".into()),
            false,
            false
        ),
        &headers
    ));
    assert!(matches(
        &value(
            "x-tenant",
            StringMatchKind::Contains("am-".into()),
            false,
            false
        ),
        &headers
    ));
    let regex = full_match_regex("team-[a-z]").unwrap();
    assert!(matches(
        &value("x-tenant", StringMatchKind::Regex(regex), false, false),
        &headers
    ));
    assert!(!matches(
        &value(
            "x-tenant",
            StringMatchKind::Exact("team-a".into()),
            false,
            true
        ),
        &headers
    ));
    // Repeats are matched joined, as Envoy does.
    assert!(matches(
        &value(
            "x-multi",
            StringMatchKind::Exact("one,two".into()),
            false,
            false
        ),
        &headers
    ));
    // A value rule on a missing header fails; inverted, it holds.
    assert!(!matches(
        &value(
            "x-missing",
            StringMatchKind::Prefix(String::new()),
            false,
            false
        ),
        &headers
    ));
    assert!(matches(
        &value(
            "x-missing",
            StringMatchKind::Prefix(String::new()),
            false,
            true
        ),
        &headers
    ));

    let present = |name: &str, present: bool| RouteMatch {
        headers: vec![HeaderMatch {
            name: name.into(),
            rule: HeaderRule::Present(present),
            invert: false,
        }],
        ..Default::default()
    };
    assert!(matches(&present("x-tenant", true), &headers));
    assert!(!matches(&present("x-missing", true), &headers));
    assert!(matches(&present("x-missing", false), &headers));
}

#[test]
fn query_parameter_rules() {
    let headers = request("GET", "h", "/p?debug&user=alice&user=bob#frag");
    let rule = |name: &str, value: Option<StringMatch>| RouteMatch {
        query_parameters: vec![QueryMatch {
            name: name.into(),
            value,
        }],
        ..Default::default()
    };
    assert!(matches(&rule("debug", None), &headers));
    assert!(!matches(&rule("missing", None), &headers));
    let exact = |s: &str| {
        Some(StringMatch {
            kind: StringMatchKind::Exact(s.into()),
            ignore_case: false,
        })
    };
    assert!(
        matches(&rule("user", exact("alice")), &headers),
        "the first value is matched"
    );
    assert!(!matches(&rule("user", exact("bob")), &headers));
}

#[test]
fn domains_with_wildcards_and_ports() {
    let rule = |domains: &[&str]| RouteMatch {
        domains: domains.iter().map(|d| Domain::parse(d)).collect(),
        ..Default::default()
    };
    let at = |host: &str| request("GET", host, "/");
    assert!(matches(&rule(&["api.example.com"]), &at("API.example.com")));
    assert!(matches(
        &rule(&["api.example.com"]),
        &at("api.example.com:8443")
    ));
    assert!(matches(
        &rule(&["api.example.com:8443"]),
        &at("api.example.com:8443")
    ));
    assert!(!matches(
        &rule(&["api.example.com:8443"]),
        &at("api.example.com:80")
    ));
    assert!(matches(&rule(&["*.example.com"]), &at("a.example.com")));
    assert!(!matches(&rule(&["*.example.com"]), &at("example.com")));
    assert!(
        !matches(&rule(&["*.example.com"]), &at(".example.com")),
        "a wildcard stands for one character at least"
    );
    assert!(matches(&rule(&["api.*"]), &at("api.internal")));
    assert!(matches(&rule(&["*"]), &at("anything")));
    assert!(matches(&rule(&["[::1]"]), &at("[::1]:80")));
    assert!(!matches(
        &rule(&["other.example", "*.example.org"]),
        &at("a.example.com")
    ));
}

#[test]
fn methods_and_every_part_together() {
    let rule = RouteMatch {
        path: Some(PathMatch::Prefix("/admin".into())),
        case_sensitive: true,
        methods: vec!["POST".into(), "PUT".into()],
        domains: vec![Domain::parse("admin.example.com")],
        ..Default::default()
    };
    assert!(matches(
        &rule,
        &request("POST", "admin.example.com", "/admin/users")
    ));
    assert!(!matches(
        &rule,
        &request("GET", "admin.example.com", "/admin/users")
    ));
    assert!(!matches(
        &rule,
        &request("POST", "www.example.com", "/admin/users")
    ));
    assert!(!matches(
        &rule,
        &request("POST", "admin.example.com", "/users")
    ));
    assert!(
        matches(&RouteMatch::default(), &request("GET", "h", "/")),
        "an empty match fits all"
    );
}
