//! The field a serde_json error is about, as a path such as `grpc_service.initial_metadata[0].key`.
//!
//! serde_json reports where in the text an error happened (line and column); this walks the text
//! up to that point and names the field being read there. It does, for the module's size, what
//! `serde_path_to_error` did: that crate wraps every visitor of every config type, which came to a
//! sixth of the module.
//!
//! [`from_slice`] reads the config by protobuf JSON's rules where serde's derives are laxer or
//! stricter (see `proto_json` and `respell`); its errors are serde_json's, placed for [`at`].

mod proto_json;
mod respell;

pub use respell::from_slice;

/// The path of the field being read after `line`/`column` (serde_json's 1-based line, and bytes
/// consumed on it). A "missing field" error comes just after its object's `}`, which names the
/// object, as it should; a "duplicate field" error comes just after the second key, and is about
/// the object too: `of_object` leaves that key out.
#[cfg(test)]
pub fn at(json: &[u8], line: usize, column: usize, of_object: bool) -> String {
    render(&segments_at(json, line, column, of_object))
}

/// One step of a field path: a key as written, or an index into an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// [`at`]'s path as its steps, so that a key holding `.` or `[` stays one key.
pub fn segments_at(json: &[u8], line: usize, column: usize, of_object: bool) -> Vec<Segment> {
    let end = offset(json, line, column);
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match json[i] {
            b'{' => stack.push(Frame::Object(None)),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object(key)) => *key = None,
                Some(Frame::Array(index)) => *index += 1,
                None => {}
            },
            b'"' => {
                let (text, after) = string(json, i);
                // In an object, the first string since `{` or `,` is a key; the rest are values.
                if let Some(Frame::Object(key @ None)) = stack.last_mut() {
                    *key = Some(text);
                }
                i = after;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if of_object {
        if let Some(Frame::Object(key)) = stack.last_mut() {
            *key = None;
        }
    }
    stack
        .into_iter()
        .filter_map(|frame| match frame {
            Frame::Object(key) => key.map(Segment::Key),
            Frame::Array(index) => Some(Segment::Index(index)),
        })
        .collect()
}

/// A path as the errors write it: `grpc_service.initial_metadata[0].key`.
pub fn render(segments: &[Segment]) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Index(index) => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    path
}

/// A path as validation writes it (snake_case keys, no `.` in them) back into its steps.
pub fn parse(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            segments.push(Segment::Key(key.to_owned()));
        }
        for piece in pieces {
            match piece.trim_end_matches(']').parse() {
                Ok(index) => segments.push(Segment::Index(index)),
                Err(_) => segments.push(Segment::Key(piece.to_owned())),
            }
        }
    }
    segments
}

/// A container being read, and where in it.
enum Frame {
    /// The key being read, from the key until the next `,`.
    Object(Option<String>),
    /// The element being read.
    Array(usize),
}

/// The byte offset of `line`/`column` as serde_json counts them.
fn offset(json: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match json[start..].iter().position(|&b| b == b'\n') {
            Some(newline) => start += newline + 1,
            None => return json.len(),
        }
    }
    (start + column).min(json.len())
}

/// The string starting at `json[at]` (a `"`), unescaped, and the index after its closing quote.
fn string(json: &[u8], at: usize) -> (String, usize) {
    let mut bytes = Vec::new();
    let mut i = at + 1;
    while let Some(&b) = json.get(i) {
        match b {
            b'"' => return (String::from_utf8_lossy(&bytes).into_owned(), i + 1),
            b'\\' => {
                let escaped = json.get(i + 1).copied().unwrap_or(b'\\');
                i += 2;
                match escaped {
                    b'n' => bytes.push(b'\n'),
                    b't' => bytes.push(b'\t'),
                    b'r' => bytes.push(b'\r'),
                    b'b' => bytes.push(0x08),
                    b'f' => bytes.push(0x0c),
                    b'u' => {
                        let hex = json.get(i..i + 4).unwrap_or_default();
                        let unit = std::str::from_utf8(hex)
                            .ok()
                            .and_then(|h| u32::from_str_radix(h, 16).ok());
                        i += 4;
                        let c = unit.and_then(char::from_u32).unwrap_or('\u{fffd}');
                        let mut utf8 = [0; 4];
                        bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                    }
                    other => bytes.push(other),
                }
                continue;
            }
            _ => bytes.push(b),
        }
        i += 1;
    }
    (String::from_utf8_lossy(&bytes).into_owned(), json.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_at_a_position() {
        let json = br#"{"a": {"b": [1, {"c": true}], "d": "x"}}"#;
        let path = |prefix: &str| at(json, 1, prefix.len(), false);
        assert_eq!(path(r#"{"a": {"b""#), "a.b");
        assert_eq!(path(r#"{"a": {"b": [1"#), "a.b[0]");
        assert_eq!(path(r#"{"a": {"b": [1, {"c": true"#), "a.b[1].c");
        assert_eq!(path(r#"{"a": {"b": [1, {"c": true}]"#), "a.b");
        // Just after an object: a field missing from it.
        assert_eq!(path(r#"{"a": {"b": [1, {"c": true}], "d": "x"}"#), "a");
        assert_eq!(path(r#"{"a": "#), "a");
        assert_eq!(at(json, 1, r#"{"a": {"b""#.len(), true), "a");
        assert_eq!(path(""), "");
    }

    #[test]
    fn counts_lines_and_unescapes_keys() {
        let json = b"{\n  \"k\\u00e9y\": {\n    \"x\": 1}}";
        assert_eq!(at(json, 3, "    \"x\": 1".len(), false), "k\u{e9}y.x");
        assert_eq!(at(json, 9, 0, false), "");
    }

    /// Every JSON object written in the config tests, each broken every way (a value of the
    /// wrong kind, an unknown key, a key taken away): the field named is the one
    /// `serde_path_to_error` named when it did this job.
    #[test]
    fn names_what_serde_path_to_error_named() {
        let sources = [include_str!("tests.rs"), include_str!("route/tests.rs")];
        let mut seeds: Vec<serde_json::Value> = Vec::new();
        for source in sources {
            for literal in source.split("r#\"").skip(1) {
                let Some(end) = literal.find("\"#") else {
                    continue;
                };
                if let Ok(value @ serde_json::Value::Object(_)) =
                    serde_json::from_str(&literal[..end])
                {
                    seeds.push(value);
                }
            }
        }
        assert!(seeds.len() > 20, "only {} seeds", seeds.len());
        let mut compared = 0;
        for seed in &seeds {
            for broken in breakages(seed) {
                // Read by the same protobuf JSON rules, so that only the paths are compared.
                let old = serde_path_to_error::deserialize::<_, super::super::raw::RawConfig>(
                    super::proto_json::ProtoJson(broken.clone()),
                )
                .err()
                .map(|e| {
                    let path = e.path().to_string();
                    (
                        if path == "." { String::new() } else { path },
                        e.into_inner().to_string(),
                    )
                });
                let canonical = serde_json::to_vec(&broken).unwrap_or_default();
                let new = from_slice::<super::super::raw::RawConfig>(&canonical)
                    .err()
                    .map(|e| {
                        let message = e.to_string();
                        let place = format!(" at line {} column {}", e.line(), e.column());
                        let reason = message.strip_suffix(&place).unwrap_or(&message).to_owned();
                        let of_object = reason.starts_with("duplicate field");
                        (at(&canonical, e.line(), e.column(), of_object), reason)
                    });
                assert_eq!(new, old, "{broken}");
                compared += 1;
            }
        }
        assert!(compared > 1000, "only {compared} documents compared");
    }

    /// `value` broken in one place, every way, at every place.
    fn breakages(value: &serde_json::Value) -> Vec<serde_json::Value> {
        use serde_json::{json, Value};
        let mut out = Vec::new();
        let kinds = [
            json!(7),
            json!(-1),
            json!(1.5),
            json!("x"),
            json!(true),
            json!(null),
            json!([]),
            json!([1]),
            json!({}),
        ];
        match value {
            Value::Object(map) => {
                let mut unknown = map.clone();
                unknown.insert("bogus".into(), json!(1));
                out.push(Value::Object(unknown));
                for (key, inner) in map {
                    // The same field under its other spelling (lowerCamelCase or snake_case).
                    let other: String = if key.contains('_') {
                        let mut parts = key.split('_');
                        let first = parts.next().unwrap_or_default().to_owned();
                        parts.fold(first, |mut name, part| {
                            let mut chars = part.chars();
                            if let Some(c) = chars.next() {
                                name.push(c.to_ascii_uppercase());
                                name.push_str(chars.as_str());
                            }
                            name
                        })
                    } else {
                        key.chars().fold(String::new(), |mut name, c| {
                            if c.is_ascii_uppercase() {
                                name.push('_');
                            }
                            name.push(c.to_ascii_lowercase());
                            name
                        })
                    };
                    if other != *key {
                        let mut twice = map.clone();
                        twice.insert(other, inner.clone());
                        out.push(Value::Object(twice));
                    }
                    let mut without = map.clone();
                    without.remove(key);
                    out.push(Value::Object(without));
                    for kind in &kinds {
                        let mut changed = map.clone();
                        changed.insert(key.clone(), kind.clone());
                        out.push(Value::Object(changed));
                    }
                    for broken in breakages(inner) {
                        let mut changed = map.clone();
                        changed.insert(key.clone(), broken);
                        out.push(Value::Object(changed));
                    }
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    for broken in breakages(inner) {
                        let mut changed = items.clone();
                        changed[i] = broken;
                        out.push(Value::Array(changed));
                    }
                }
            }
            _ => {}
        }
        out
    }
}
