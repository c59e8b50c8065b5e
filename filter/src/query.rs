//! `query_parameters_to_set` / `query_parameters_to_remove` applied to `:path`, as native does it:
//! the query is parsed into parameters ordered by key (repeats kept in order), changed, and
//! written back. So a rewritten query comes out sorted by key, exactly like native's. Values are
//! not decoded or re-encoded: the server's bytes go upstream as they are.

use std::collections::BTreeMap;

/// Returns `path` with its query rewritten: `set` first (which replaces every value of its key),
/// then `remove`. A path with no parameters left loses its `?`.
pub fn rewrite(path: &str, set: &[(String, String)], remove: &[String]) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let mut params: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    // As native's parser: every `&` ends a parameter, so an empty one in the middle stays (as the
    // key "" with the value ""), while nothing after a final `&` is one.
    let query = query.strip_suffix('&').unwrap_or(query);
    for pair in query.split('&').filter(|_| !query.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.entry(key).or_default().push(value);
    }
    // Native's order: set first, then remove, so a key in both lists is gone.
    for (key, value) in set {
        params.insert(key.as_str(), vec![value.as_str()]);
    }
    for key in remove {
        params.remove(key.as_str());
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
    fn empty_parameters_stay_as_native_keeps_them() {
        assert_eq!(
            rewrite("/p?&a=1&&b", &set(&[("c", "")]), &[]),
            "/p?=&=&a=1&b=&c="
        );
        assert_eq!(rewrite("/p?a=1&", &set(&[("c", "2")]), &[]), "/p?a=1&c=2");
        assert_eq!(rewrite("/p?", &set(&[("c", "2")]), &[]), "/p?c=2");
    }

    #[test]
    fn a_key_both_set_and_removed_is_removed() {
        assert_eq!(
            rewrite("/p?&a=0&b=2", &set(&[("a", "1")]), &["a".into()]),
            "/p?=&b=2"
        );
    }

    #[test]
    fn keeps_bytes_as_they_are() {
        assert_eq!(
            rewrite("/p?q=a%20b", &set(&[("x", "%2F")]), &[]),
            "/p?q=a%20b&x=%2F"
        );
    }
}
