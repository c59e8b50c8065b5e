//! Durations as protobuf JSON writes them (`"0.25s"`, `"2s"`, `"1.000000001s"`), so a native
//! ext_authz config moves over unchanged.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer};

/// A non-negative duration parsed from protobuf JSON's `"<seconds>[.<fraction>]s"` form.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProtoDuration(
    /// A protobuf JSON duration: seconds with up to nine decimals and an `s`, such as "0.25s".
    #[cfg_attr(
        feature = "schema",
        schemars(with = "String", pattern(r"^[0-9]+(\.[0-9]{1,9})?s$"))
    )]
    pub Duration,
);

impl<'de> Deserialize<'de> for ProtoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only the JSON Schema's derives use this; the filter reads durations in `config::reader`.
        struct Text;
        impl de::Visitor<'_> for Text {
            type Value = ProtoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ProtoDuration, E> {
                parse(text).map(ProtoDuration).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// What a duration looks like, for errors and the JSON Schema's description.
pub const DURATION_FORM: &str = "durations are seconds with up to nine decimals and end in \"s\"";

/// Why a duration string was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum DurationError {
    Negative(String),
    Malformed(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Negative(s) => write!(f, "duration {s:?} must not be negative"),
            // The example is the value itself with its `s` when that is all it lacks.
            Self::Malformed(s) => {
                let fixed = format!("{s}s");
                let example = if parse(&fixed).is_ok() {
                    &fixed
                } else {
                    "0.25s"
                };
                write!(
                    f,
                    "duration {s:?} is not a protobuf JSON duration: {DURATION_FORM}, such as {example:?}"
                )
            }
        }
    }
}

/// Parses `"1.5s"`: whole seconds, an optional fraction of up to nine digits, and a trailing `s`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let malformed = || DurationError::Malformed(text.to_owned());
    if text.starts_with('-') {
        return Err(DurationError::Negative(text.to_owned()));
    }
    let Some(number) = text.strip_suffix('s') else {
        return Err(malformed());
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 9 {
        return Err(malformed());
    }
    if number.ends_with('.') {
        return Err(malformed());
    }
    let seconds: u64 = whole.parse().map_err(|_| malformed())?;
    // Right-pad the fraction to nanoseconds: "25" is 250_000_000 ns.
    let nanos = if fraction.is_empty() {
        0
    } else {
        let scale = 10u32.pow(9 - fraction.len() as u32);
        fraction.parse::<u32>().map_err(|_| malformed())? * scale
    };
    Ok(Duration::new(seconds, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_protobuf_json_durations() {
        assert_eq!(parse("0.25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1.000000001s"), Ok(Duration::new(1, 1)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn a_malformed_duration_says_what_would_be_accepted() {
        assert_eq!(
            DurationError::Malformed("0.25".into()).to_string(),
            r#"duration "0.25" is not a protobuf JSON duration: durations are seconds with up to nine decimals and end in "s", such as "0.25s""#
        );
        assert!(DurationError::Malformed("500ms".into())
            .to_string()
            .ends_with(r#"such as "0.25s""#));
    }

    #[test]
    fn refuses_negative_and_malformed() {
        assert!(matches!(parse("-1s"), Err(DurationError::Negative(_))));
        for bad in [
            "",
            "s",
            "1",
            "1.s",
            ".5s",
            "1.0000000001s",
            "1ms",
            "0x1s",
            " 1s",
        ] {
            assert!(
                matches!(parse(bad), Err(DurationError::Malformed(_))),
                "{bad:?} should be refused"
            );
        }
    }
}
