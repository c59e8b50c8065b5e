//! serde's reasons made into ones a person can act on: an unknown field names the field that was
//! probably meant ("did you mean"), an unknown enum value lists the accepted ones, a number out of
//! range says the range.
//!
//! Worked from serde's own messages, which carry the names a message accepts (`unknown field
//! `x`, expected one of `a`, `b``), so a field added to the raw types later is suggested with no
//! code of its own.

use super::refused::to_snake_case;

/// `reason` (serde's, its place stripped) made actionable, and for an unknown field the field
/// that was probably meant.
pub(super) fn explain(reason: &str) -> (String, Option<String>) {
    if let Some(rest) = reason.strip_prefix("unknown field ") {
        let (name, accepted) = names(rest);
        // Each field is accepted in snake_case and lowerCamelCase; people read the first.
        let mut fields: Vec<String> = Vec::new();
        for field in accepted.iter().map(|a| to_snake_case(a)) {
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        return match closest(&name, &fields) {
            Some(meant) => (
                format!("unknown field `{name}`: did you mean `{meant}`?"),
                Some(meant.to_owned()),
            ),
            None if fields.is_empty() => (
                format!("unknown field `{name}`: this takes no fields"),
                None,
            ),
            None => (
                format!(
                    "unknown field `{name}`; the fields here are {}",
                    listed(&fields)
                ),
                None,
            ),
        };
    }
    if let Some(rest) = reason.strip_prefix("unknown variant ") {
        let (name, accepted) = names(rest);
        let mut values: Vec<String> = Vec::new();
        for value in accepted {
            if !values.contains(&value) {
                values.push(value);
            }
        }
        let list = listed(&values);
        return match closest(&name, &values) {
            Some(meant) => (
                format!("unknown value `{name}`: did you mean `{meant}`? (accepted: {list})"),
                None,
            ),
            None => (format!("unknown value `{name}`; accepted: {list}"), None),
        };
    }
    for kind in ["invalid type: ", "invalid value: "] {
        if let Some((got, expected)) = reason
            .strip_prefix(kind)
            .and_then(|rest| rest.rsplit_once(", expected "))
        {
            return (
                format!("{kind}{got}, expected {}", accepted(expected)),
                None,
            );
        }
    }
    (reason.to_owned(), None)
}

/// `a, b, c` (by hand: `join` would be a kilobyte of wasm of its own).
fn listed(names: &[String]) -> String {
    let mut list = String::new();
    for name in names {
        if !list.is_empty() {
            list.push_str(", ");
        }
        list.push_str(name);
    }
    list
}

/// The name in backticks at the start of `rest`, and the backticked names after it.
fn names(rest: &str) -> (String, Vec<String>) {
    let mut quoted = rest.split('`').skip(1).step_by(2).map(str::to_owned);
    let name = quoted.next().unwrap_or_default();
    (name, quoted.collect())
}

/// What serde's name of a type accepts, in the config's words.
fn accepted(expected: &str) -> String {
    let range = match expected {
        "u8" => "0 to 255",
        "u16" => "0 to 65535",
        "u32" => "0 to 4294967295",
        "u64" => "0 to 18446744073709551615",
        "i32" => "-2147483648 to 2147483647",
        "i64" => "-9223372036854775808 to 9223372036854775807",
        _ if expected.starts_with("struct ") || expected == "a map" => return "an object".into(),
        "a sequence" => return "a list".into(),
        _ => return expected.to_owned(),
    };
    format!("a whole number from {range}")
}

/// The candidate nearest `name` with case and `_` folded (`failureModeAlow`, `grpcservice`), if
/// it is near enough to be what was meant: a third of the name may differ.
fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let folded = fold(name);
    let limit = (folded.len() / 3).max(1);
    candidates
        .iter()
        .map(|c| (distance(&folded, &fold(c)), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn fold(name: &str) -> Vec<u8> {
    name.bytes()
        .filter(|b| *b != b'_')
        .map(|b| b.to_ascii_lowercase())
        .collect()
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`.
fn distance(a: &[u8], b: &[u8]) -> usize {
    // Three rows of the table: two back (for swaps), one back, this one.
    let mut before: Vec<usize> = Vec::new();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (previous[j] + 1)
                .min(row[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut previous, row);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn distance_counts_edits_and_swaps() {
        assert_eq!(distance(b"abc", b"abc"), 0);
        assert_eq!(distance(b"abc", b"abd"), 1);
        assert_eq!(distance(b"abc", b"acb"), 1);
        assert_eq!(distance(b"", b"abc"), 3);
        assert_eq!(distance(b"kitten", b"sitting"), 3);
    }

    #[test]
    fn the_closest_field_is_found_with_case_and_underscores_folded() {
        let accepted = fields(&[
            "grpc_service",
            "failure_mode_allow",
            "failure_mode_allow_header_add",
        ]);
        assert_eq!(
            closest("failure_mode_alow", &accepted),
            Some("failure_mode_allow")
        );
        assert_eq!(
            closest("failureModeAlow", &accepted),
            Some("failure_mode_allow")
        );
        assert_eq!(closest("grpcservice", &accepted), Some("grpc_service"));
        assert_eq!(closest("GRPC_SERVICE", &accepted), Some("grpc_service"));
        assert_eq!(closest("bogus", &accepted), None);
    }

    #[test]
    fn serde_reasons_become_advice() {
        let (reason, meant) =
            explain("unknown field `timeot`, expected one of `envoy_grpc`, `envoyGrpc`, `timeout`");
        assert_eq!(reason, "unknown field `timeot`: did you mean `timeout`?");
        assert_eq!(meant.as_deref(), Some("timeout"));
        let (reason, meant) = explain(
            "unknown field `zzz`, expected one of `envoy_grpc`, `envoyGrpc`, `initial_metadata`, `initialMetadata`",
        );
        assert_eq!(
            reason,
            "unknown field `zzz`; the fields here are envoy_grpc, initial_metadata"
        );
        assert_eq!(meant, None);
        assert_eq!(
            explain("unknown field `x`, there are no fields").0,
            "unknown field `x`: this takes no fields"
        );
        assert_eq!(
            explain("unknown variant `FAIL_OPN`, expected `FAIL_OPEN` or `FAIL_CLOSED`").0,
            "unknown value `FAIL_OPN`: did you mean `FAIL_OPEN`? (accepted: FAIL_OPEN, FAIL_CLOSED)"
        );
        assert_eq!(
            explain("unknown variant `x`, expected one of `V3`, `AUTO`").0,
            "unknown value `x`; accepted: V3, AUTO"
        );
        assert_eq!(
            explain("invalid value: integer `-1`, expected u32").0,
            "invalid value: integer `-1`, expected a whole number from 0 to 4294967295"
        );
        assert_eq!(
            explain("invalid type: integer `5`, expected struct RawHttpStatus").0,
            "invalid type: integer `5`, expected an object"
        );
        assert_eq!(
            explain("invalid type: string \"yes\", expected a boolean").0,
            "invalid type: string \"yes\", expected a boolean"
        );
        assert_eq!(explain("missing field `key`").0, "missing field `key`");
    }
}
