//! `query_parameters_to_set` / `query_parameters_to_remove` applied to `:path`, as native does it:
//! the query is parsed into parameters ordered by key (repeats kept in order), changed, and
//! written back. So a rewritten query comes out sorted by key, exactly like native's. Values are
//! not decoded or re-encoded: the server's bytes go upstream as they are.

use crate::header_map::sort_by_name;

/// Returns `path` with its query rewritten: `set` first (which replaces every value of its key),
/// then `remove`. A path with no parameters left loses its `?`.
pub fn rewrite(path: &str, set: &[(String, String)], remove: &[String]) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    // Pairs of bytes, so that the one stable sort of pairs in the module serves here too.
    let mut params: Vec<(&[u8], &[u8])> = Vec::new();
    // As native's parser: every `&` ends a parameter, so an empty one in the middle stays (as the
    // key "" with the value ""), while nothing after a final `&` is one.
    let query = query.strip_suffix('&').unwrap_or(query);
    for pair in query.split('&').filter(|_| !query.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.push((key.as_bytes(), value.as_bytes()));
    }
    // Native's order: set first, then remove, so a key in both lists is gone.
    for (key, value) in set {
        params.retain(|(k, _)| *k != key.as_bytes());
        params.push((key.as_bytes(), value.as_bytes()));
    }
    for key in remove {
        params.retain(|(k, _)| *k != key.as_bytes());
    }
    sort_by_name(&mut params);
    let mut out = Vec::with_capacity(path.len() + 16);
    out.extend_from_slice(base.as_bytes());
    let mut separator = b'?';
    for (key, value) in params {
        out.push(separator);
        out.extend_from_slice(key);
        out.push(b'=');
        out.extend_from_slice(value);
        separator = b'&';
    }
    // Whole pieces of UTF-8 strings, cut at ASCII bytes: always UTF-8.
    String::from_utf8(out).unwrap_or_default()
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
    fn a_key_set_twice_keeps_the_last_value() {
        assert_eq!(
            rewrite("/p?b=0&a=0&a=9", &set(&[("a", "1"), ("a", "2")]), &[]),
            "/p?a=2&b=0"
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
