//! `query_parameters_to_set` / `query_parameters_to_remove` applied to `:path`, as native does it:
//! the query is parsed into parameters ordered by key (repeats kept in order), changed, and
//! written back. So a rewritten query comes out sorted by key, exactly like native's. Values are
//! not decoded or re-encoded: the server's bytes go upstream as they are.

use std::collections::BTreeMap;

/// Returns `path` with its query rewritten: `remove` first, then `set` (which replaces every value
/// of its key). A path with no parameters left loses its `?`.
pub fn rewrite(path: &str, set: &[(String, String)], remove: &[String]) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let mut params: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.entry(key).or_default().push(value);
    }
    for key in remove {
        params.remove(key.as_str());
    }
    for (key, value) in set {
        params.insert(key.as_str(), vec![value.as_str()]);
    }
    let mut out = String::with_capacity(path.len() + 16);
    out.push_str(base);
    let mut separator = '?';
    for (key, values) in &params {
        for value in values {
            out.push(separator);
            out.push_str(key);
            out.push('=');
            out.push_str(value);
            separator = '&';
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sets_and_removes_in_sorted_order() {
        let path = rewrite(
            "/p?z=1&a=2&drop=x&a=3",
            &set(&[("m", "v"), ("z", "9")]),
            &["drop".into()],
        );
        assert_eq!(path, "/p?a=2&a=3&m=v&z=9");
    }

    #[test]
    fn adds_a_query_where_there_was_none() {
        assert_eq!(rewrite("/p", &set(&[("k", "v")]), &[]), "/p?k=v");
    }

    #[test]
    fn removing_the_last_parameter_drops_the_question_mark() {
        assert_eq!(rewrite("/p?k=v", &[], &["k".into()]), "/p");
    }

    #[test]
    fn keeps_bytes_as_they_are() {
        assert_eq!(
            rewrite("/p?q=a%20b", &set(&[("x", "%2F")]), &[]),
            "/p?q=a%20b&x=%2F"
        );
    }
}
