//! Envoy's route-match shapes, evaluated against a request's headers: path (`prefix`, `path`,
//! `safe_regex`, `path_separated_prefix`), `headers` (HeaderMatcher), `query_parameters`,
//! virtual-host `domains` with wildcards, and `methods`.
//!
//! As in Envoy, path rules see the path without its query string or fragment, regexes must match
//! the whole string, and domains are compared without case.

/// A regex that must match the whole input, compared by its pattern.
#[derive(Debug, Clone)]
pub struct Regex(regex_lite::Regex);

impl Regex {
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// The parts of a request that rules look at, borrowed from the host's header map.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub headers: &'a [(&'a [u8], &'a [u8])],
}

impl<'a> RequestView<'a> {
    pub fn new(headers: &'a [(&'a [u8], &'a [u8])]) -> Self {
        Self { headers }
    }

    /// The values of a header, in order (names compared without case).
    fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    }

    fn first(&self, name: &str) -> Option<&'a [u8]> {
        self.values(name).next()
    }

    /// `:path` up to `?` or `#`.
    fn path(&self) -> &'a [u8] {
        let path = self.first(":path").unwrap_or_default();
        let end = path
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(path.len());
        &path[..end]
    }

    /// The raw query string of `:path`, without `?` and any fragment.
    fn query(&self) -> &'a [u8] {
        let path = self.first(":path").unwrap_or_default();
        let Some(start) = path.iter().position(|&b| b == b'?') else {
            return &[];
        };
        let query = &path[start + 1..];
        let end = query.iter().position(|&b| b == b'#').unwrap_or(query.len());
        &query[..end]
    }
}

/// How a path is matched.
#[derive(Debug, Clone, PartialEq)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    /// `prefix` followed by nothing or by `/`.
    SeparatedPrefix(String),
    Regex(Regex),
}

/// How a string is matched (Envoy's StringMatcher).
#[derive(Debug, Clone, PartialEq)]
pub struct StringMatch {
    pub kind: StringMatchKind,
    pub ignore_case: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StringMatchKind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
}

impl StringMatch {
    pub fn matches(&self, value: &[u8]) -> bool {
        let Ok(value) = std::str::from_utf8(value) else {
            return false;
        };
        let fold = |s: &str| {
            if self.ignore_case {
                s.to_ascii_lowercase()
            } else {
                s.to_owned()
            }
        };
        match &self.kind {
            StringMatchKind::Regex(regex) => regex.is_match(value),
            StringMatchKind::Exact(want) => fold(value) == fold(want),
            StringMatchKind::Prefix(want) => fold(value).starts_with(&fold(want)),
            StringMatchKind::Suffix(want) => fold(value).ends_with(&fold(want)),
            StringMatchKind::Contains(want) => fold(value).contains(&fold(want)),
        }
    }
}

/// Envoy's HeaderMatcher: a string rule or presence, optionally inverted.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatch {
    pub name: String,
    pub rule: HeaderRule,
    pub invert: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HeaderRule {
    /// `present_match`: whether the header is there at all.
    Present(bool),
    /// A string rule on the header's value (repeats joined with `,`, as Envoy does).
    Value(StringMatch),
}

impl HeaderMatch {
    fn matches(&self, request: &RequestView<'_>) -> bool {
        let values = crate::header_map::values(request.headers, self.name.as_bytes());
        let matched = match &self.rule {
            HeaderRule::Present(present) => values.is_empty() != *present,
            HeaderRule::Value(_) if values.is_empty() => false,
            HeaderRule::Value(rule) => rule.matches(&values.join(&b',')),
        };
        matched != self.invert
    }
}

/// Envoy's QueryParameterMatcher.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryMatch {
    pub name: String,
    /// `None` is `present_match: true`.
    pub value: Option<StringMatch>,
}

impl QueryMatch {
    fn matches(&self, request: &RequestView<'_>) -> bool {
        let mut values = request.query().split(|&b| b == b'&').filter_map(|pair| {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &b""[..]),
            };
            (key == self.name.as_bytes()).then_some(value)
        });
        match &self.value {
            None => values.next().is_some(),
            // As Envoy: the first value of the parameter is the one matched.
            Some(rule) => values.next().is_some_and(|v| rule.matches(v)),
        }
    }
}

/// A virtual-host domain: exact, `*`, `*suffix` or `prefix*`, without case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    Any,
    Exact(String),
    Suffix(String),
    Prefix(String),
}

impl Domain {
    pub fn parse(pattern: &str) -> Self {
        let pattern = pattern.to_ascii_lowercase();
        if pattern == "*" {
            Self::Any
        } else if let Some(suffix) = pattern.strip_prefix('*') {
            Self::Suffix(suffix.to_owned())
        } else if let Some(prefix) = pattern.strip_suffix('*') {
            Self::Prefix(prefix.to_owned())
        } else {
            Self::Exact(pattern)
        }
    }

    /// Matches the host with its port, or without it when the pattern has none.
    fn matches(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let bare = strip_port(&host);
        let test = |h: &str| match self {
            Self::Any => true,
            Self::Exact(want) => h == want,
            // A wildcard stands for at least one character, as in Envoy.
            Self::Suffix(suffix) => h.len() > suffix.len() && h.ends_with(suffix.as_str()),
            Self::Prefix(prefix) => h.len() > prefix.len() && h.starts_with(prefix.as_str()),
        };
        test(&host) || test(bare)
    }
}

fn strip_port(host: &str) -> &str {
    // `[v6]:port`, `name:port`; a bare IPv6 literal has no port to strip.
    if let Some(end) = host.rfind(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// One route's `match`: every part given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteMatch {
    pub path: Option<PathMatch>,
    /// `case_sensitive` of the path rule; Envoy's default is true.
    pub case_sensitive: bool,
    pub headers: Vec<HeaderMatch>,
    pub query_parameters: Vec<QueryMatch>,
    pub domains: Vec<Domain>,
    /// Upper-case method names; empty means any.
    pub methods: Vec<String>,
}

impl RouteMatch {
    pub fn matches(&self, request: &RequestView<'_>) -> bool {
        self.path_matches(request)
            && self.headers.iter().all(|h| h.matches(request))
            && self.query_parameters.iter().all(|q| q.matches(request))
            && (self.domains.is_empty() || {
                let host = String::from_utf8_lossy(request.first(":authority").unwrap_or_default());
                self.domains.iter().any(|d| d.matches(&host))
            })
            && (self.methods.is_empty() || {
                let method = request.first(":method").unwrap_or_default();
                self.methods.iter().any(|m| m.as_bytes() == method)
            })
    }

    fn path_matches(&self, request: &RequestView<'_>) -> bool {
        let Some(rule) = &self.path else {
            return true;
        };
        let path = String::from_utf8_lossy(request.path());
        let (path, fold) = if self.case_sensitive {
            (path.into_owned(), false)
        } else {
            (path.to_ascii_lowercase(), true)
        };
        let want = |s: &str| {
            if fold {
                s.to_ascii_lowercase()
            } else {
                s.to_owned()
            }
        };
        match rule {
            PathMatch::Prefix(prefix) => path.starts_with(&want(prefix)),
            PathMatch::Exact(exact) => path == want(exact),
            PathMatch::SeparatedPrefix(prefix) => {
                let prefix = want(prefix);
                path == prefix
                    || path
                        .strip_prefix(&prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            PathMatch::Regex(regex) => regex.is_match(&path),
        }
    }
}

/// Compiles an RE2-style pattern that must match the whole input, as Envoy's `safe_regex` does.
pub fn full_match_regex(pattern: &str) -> Result<Regex, String> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
        .map(Regex)
        .map_err(|e| format!("{pattern:?} is not a valid regex: {e}"))
}

#[cfg(test)]
mod tests;
