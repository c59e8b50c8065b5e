//! Reasons a person can act on: an unknown field names the field that was probably meant ("did
//! you mean"), an unknown enum value lists the accepted ones.
//!
//! Worked from the raw types' field tables (`config::reader`), so a field added to them later is
//! suggested with no code of its own.

/// Why `name` is not a field of a message whose fields are `fields` (snake_case), and the field
/// that was probably meant.
pub(super) fn unknown_field(
    name: &str,
    fields: &'static [&'static str],
) -> (String, Option<&'static str>) {
    match closest(name, fields) {
        Some(meant) => (
            format!("unknown field `{name}`: did you mean `{meant}`?"),
            Some(meant),
        ),
        None if fields.is_empty() => (
            format!("unknown field `{name}`: this takes no fields"),
            None,
        ),
        None => (
            format!(
                "unknown field `{name}`; the fields here are {}",
                listed(fields)
            ),
            None,
        ),
    }
}

/// Why `name` is not one of an enum's `values`.
pub(super) fn unknown_value(name: &str, values: &'static [&'static str]) -> String {
    let list = listed(values);
    match closest(name, values) {
        Some(meant) => {
            format!("unknown value `{name}`: did you mean `{meant}`? (accepted: {list})")
        }
        None => format!("unknown value `{name}`; accepted: {list}"),
    }
}

/// `a, b, c` (by hand: `join` would be a kilobyte of wasm of its own).
fn listed(names: &[&str]) -> String {
    let mut list = String::new();
    for name in names {
        if !list.is_empty() {
            list.push_str(", ");
        }
        list.push_str(name);
    }
    list
}

/// The candidate nearest `name` with case and `_` folded (`failureModeAlow`, `grpcservice`), if
/// it is near enough to be what was meant: a third of the name may differ.
fn closest(name: &str, candidates: &'static [&'static str]) -> Option<&'static str> {
    let folded = fold(name);
    let limit = (folded.len() / 3).max(1);
    candidates
        .iter()
        .map(|c| (fold(c), c))
        // Lengths further apart than the limit are further apart in edits too: a long name
        // costs no table of edits.
        .filter(|(c, _)| c.len().abs_diff(folded.len()) <= limit)
        .map(|(c, name)| (distance(&folded, &c), name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| *c)
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
        const ACCEPTED: &[&str] = &[
            "grpc_service",
            "failure_mode_allow",
            "failure_mode_allow_header_add",
        ];
        let accepted = ACCEPTED;
        assert_eq!(
            closest("failure_mode_alow", accepted),
            Some("failure_mode_allow")
        );
        assert_eq!(
            closest("failureModeAlow", accepted),
            Some("failure_mode_allow")
        );
        assert_eq!(closest("grpcservice", accepted), Some("grpc_service"));
        assert_eq!(closest("GRPC_SERVICE", accepted), Some("grpc_service"));
        assert_eq!(closest("bogus", accepted), None);
    }

    #[test]
    fn unknown_names_get_advice() {
        const GRPC: &[&str] = &["envoy_grpc", "timeout", "initial_metadata"];
        let (reason, meant) = unknown_field("timeot", GRPC);
        assert_eq!(reason, "unknown field `timeot`: did you mean `timeout`?");
        assert_eq!(meant, Some("timeout"));
        let (reason, meant) = unknown_field("zzz", GRPC);
        assert_eq!(
            reason,
            "unknown field `zzz`; the fields here are envoy_grpc, timeout, initial_metadata"
        );
        assert_eq!(meant, None);
        assert_eq!(
            unknown_field("x", &[]).0,
            "unknown field `x`: this takes no fields"
        );
        const MODES: &[&str] = &["FAIL_OPEN", "FAIL_CLOSED"];
        assert_eq!(
            unknown_value("FAIL_OPN", MODES),
            "unknown value `FAIL_OPN`: did you mean `FAIL_OPEN`? (accepted: FAIL_OPEN, FAIL_CLOSED)"
        );
        assert_eq!(
            unknown_value("x", MODES),
            "unknown value `x`; accepted: FAIL_OPEN, FAIL_CLOSED"
        );
    }
}
