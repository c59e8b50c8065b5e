//! Protobuf JSON's other spellings of scalars, which serde refuses: an integer written as a
//! string (`"403"`, as protobuf JSON writes 64-bit integers) or as an integral float (`403.0`,
//! `1e3`), a boolean as `"true"`/`"false"`. Native ext_authz reads them; so does the filter.
//!
//! Rather than a deserializer that reads every scalar through `deserialize_any` (tens of KB of
//! wasm: serde_json's whole parser copied per visitor), the config is read as it is, and where
//! serde refuses such a token for an integer or a boolean, the token is rewritten in place and
//! the read tried again. A rewrite never changes the text's length (the new token is padded with
//! spaces), so every later error still points into the text the caller has.

use serde::de::DeserializeOwned;

use super::{offset, proto_json};

/// Deserializes `T` from JSON text by protobuf JSON's rules; errors are placed in `json`.
pub fn from_slice<T: DeserializeOwned>(json: &[u8]) -> serde_json::Result<T> {
    let mut text = std::borrow::Cow::Borrowed(json);
    // Each rewrite turns one refused token into one serde reads, so this ends; the cap keeps a
    // config of thousands of such tokens from being read thousands of times.
    for _ in 0..MAX_REWRITES {
        let error = match proto_json::from_slice(&text) {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        match respelled(&text, &error) {
            Some(next) => text = std::borrow::Cow::Owned(next),
            None => return Err(error),
        }
    }
    proto_json::from_slice(&text)
}

/// More rewrites than any config written by hand needs.
const MAX_REWRITES: usize = 64;

/// serde's names for the integer types it expected.
const INTEGERS: &[&str] = &["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"];

/// `text` with the token `error` refused rewritten as serde expects it, if it is one protobuf
/// JSON allows there.
fn respelled(text: &[u8], error: &serde_json::Error) -> Option<Vec<u8>> {
    if !error.is_data() {
        return None;
    }
    let message = error.to_string();
    let (refused, expected) = message
        .strip_prefix("invalid type: ")?
        .split_once(" at line ")?
        .0
        .rsplit_once(", expected ")?;
    let end = offset(text, error.line(), error.column());
    let quoted = refused.starts_with("string ");
    if !quoted && !refused.starts_with("floating point ") {
        return None;
    }
    let (start, token) = token_before(text, end, quoted)?;
    let replacement = if INTEGERS.contains(&expected) {
        integer(token)?
    } else if expected == "a boolean" && quoted && (token == "true" || token == "false") {
        token.to_owned()
    } else {
        return None;
    };
    let width = end - start;
    if replacement.len() > width {
        return None;
    }
    let mut next = text.to_vec();
    next[start..end].fill(b' ');
    next[start..start + replacement.len()].copy_from_slice(replacement.as_bytes());
    Some(next)
}

/// The number or string (its contents, unescaped only if it needs no unescaping) that ends at
/// `end`, with where it starts.
fn token_before(text: &[u8], end: usize, quoted: bool) -> Option<(usize, &str)> {
    let is_number = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-');
    let before = text.get(..end)?;
    let (start, token) = if quoted {
        let inner = before.strip_suffix(b"\"")?;
        let len = inner.iter().rev().take_while(|b| is_number(b)).count();
        let start = inner.len() - len;
        (start.checked_sub(1)?, &inner[start..])
    } else {
        let len = before.iter().rev().take_while(|b| is_number(b)).count();
        (end - len, &before[end - len..])
    };
    if quoted && text.get(start) != Some(&b'"') {
        return None;
    }
    Some((start, std::str::from_utf8(token).ok()?))
}

/// An integer's digits for a token protobuf JSON reads as one: digits, or an integral float
/// (`403.0`, `1e3`, `1.5e1`). Worked on the digits as text: parsing floats would bring in
/// core's float parser, as large as the rest of this module many times over.
fn integer(token: &str) -> Option<String> {
    let (sign, unsigned) = match token.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", token),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) {
        return None;
    }
    let mut digits = format!("{whole}{fraction}");
    let shift = exponent.checked_sub(i32::try_from(fraction.len()).ok()?)?;
    if shift < 0 {
        let cut = digits.len().checked_sub(shift.unsigned_abs() as usize)?;
        if !digits[cut..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits.truncate(cut);
    } else {
        digits.extend(std::iter::repeat_n(
            '0',
            usize::try_from(shift).ok()?.min(20),
        ));
    }
    let digits = digits.trim_start_matches('0');
    // Past 19 digits serde_json would read a float again: left refused, never rewritten twice.
    match digits.len() {
        0 => Some("0".to_owned()),
        1..=19 => Some(format!("{sign}{digits}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Sample {
        n: Option<u32>,
        i: Option<i64>,
        b: Option<bool>,
        s: Option<String>,
    }

    fn read(json: &str) -> Result<Sample, String> {
        from_slice::<Sample>(json.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn other_spellings_of_integers_and_booleans_are_read() {
        let sample = |n, i, b| Sample { n, i, b, s: None };
        assert_eq!(read(r#"{"n": "403"}"#), Ok(sample(Some(403), None, None)));
        assert_eq!(read(r#"{"n": 403.0}"#), Ok(sample(Some(403), None, None)));
        // serde_json writes 1e3 back as 1000.0, so the config's canonical text has room.
        assert_eq!(read(r#"{"n": 1000.0}"#), Ok(sample(Some(1000), None, None)));
        assert_eq!(read(r#"{"n": "1.5e1"}"#), Ok(sample(Some(15), None, None)));
        assert_eq!(read(r#"{"i": -42.000}"#), Ok(sample(None, Some(-42), None)));
        assert_eq!(read(r#"{"n": "1e3"}"#), Ok(sample(Some(1000), None, None)));
        assert_eq!(
            read(r#"{"i": "-7", "b": "true"}"#),
            Ok(sample(None, Some(-7), Some(true)))
        );
        assert_eq!(
            read(r#"{"b": "false", "n": "0"}"#),
            Ok(sample(Some(0), None, Some(false)))
        );
        // A string field keeps its string.
        assert_eq!(read(r#"{"s": "403"}"#).unwrap().s.as_deref(), Some("403"));
    }

    #[test]
    fn what_protobuf_json_refuses_is_refused_where_it_stands() {
        // Columns are bytes read on the line: each error falls within the token refused.
        for (json, reason) in [
            (
                r#"{"n": "four"}"#,
                r#"invalid type: string "four", expected u32 at line 1 column 12"#,
            ),
            (
                r#"{"n": 10.5}"#,
                "invalid type: floating point `10.5`, expected u32 at line 1 column 10",
            ),
            (
                r#"{"n": "-1"}"#,
                "invalid value: integer `-1`, expected u32 at line 1 column 8",
            ),
            (
                r#"{"n": 4294967296.0}"#,
                "invalid value: integer `4294967296`, expected u32 at line 1 column 16",
            ),
            (
                r#"{"b": "yes"}"#,
                r#"invalid type: string "yes", expected a boolean at line 1 column 11"#,
            ),
            (
                r#"{"b": 1}"#,
                "invalid type: integer `1`, expected a boolean at line 1 column 7",
            ),
            (
                r#"{"n": "\u0034"}"#,
                r#"invalid type: string "4", expected u32 at line 1 column 14"#,
            ),
            (
                r#"{"n": 1e300}"#,
                "invalid type: floating point `1e+300`, expected u32 at line 1 column 11",
            ),
        ] {
            assert_eq!(read(json), Err(reason.to_owned()), "{json}");
        }
    }
}
