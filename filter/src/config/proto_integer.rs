//! A whole number written as a JSON string, as protobuf JSON allows for integer fields: `"403"`,
//! `"-7"`, and integral forms with a fraction or an exponent (`"403.0"`, `"1e3"`, `"1.5e1"`).
//!
//! Worked on the digits as text: parsing the string as a float would bring in core's float
//! parser, and lose precision past 2^53.

/// The number `text` writes, if it is a whole one of at most 19 digits (past that no config
/// field has room for it).
pub(super) fn parse(text: &str) -> Option<i128> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
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
    // The digits without the point, and how many places the point moves right from their end.
    let digits = whole.bytes().chain(fraction.bytes());
    let shift = exponent.checked_sub(i32::try_from(fraction.len()).ok()?)?;
    let kept = whole.len() + fraction.len();
    let (kept, zeros) = if shift < 0 {
        let cut = usize::try_from(shift.unsigned_abs()).ok()?;
        (kept.checked_sub(cut)?, 0)
    } else {
        (kept, usize::try_from(shift).ok()?)
    };
    let mut value: i128 = 0;
    let mut significant = 0usize;
    for (i, b) in digits.enumerate() {
        let digit = i128::from(b - b'0');
        if i >= kept {
            // Past the point: only zeros keep it whole.
            if digit != 0 {
                return None;
            }
            continue;
        }
        if value != 0 || digit != 0 {
            significant += 1;
        }
        value = value * 10 + digit;
        if significant > 19 {
            return None;
        }
    }
    for _ in 0..zeros {
        if value != 0 {
            significant += 1;
            if significant > 19 {
                return None;
            }
        }
        value *= 10;
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_protobuf_json_spellings_of_whole_numbers() {
        for (text, value) in [
            ("403", 403),
            ("-7", -7),
            ("0", 0),
            ("403.0", 403),
            ("1e3", 1000),
            ("1E3", 1000),
            ("1.5e1", 15),
            ("-42.000", -42),
            ("1000e-3", 1),
            ("5.", 5),
            ("4294967296", 4_294_967_296),
            ("9223372036854775807", 9_223_372_036_854_775_807),
            ("0000000000000000000000001", 1),
        ] {
            assert_eq!(parse(text), Some(value), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_whole_number() {
        for text in [
            "",
            "four",
            "10.5",
            "1.5e0",
            "1e-1",
            "-",
            ".5",
            "1e",
            "1500e-3",
            "0x10",
            " 1",
            "1 ",
            "+1",
            "1e300",
            "12345678901234567890",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
