//! YAML (and so JSON) documents as trees that remember the line of every key and value, so that
//! an error's field path can be shown at the line that holds the field.
//!
//! Scalars are typed as YAML 1.2's core schema does: quoted scalars are strings; plain ones are
//! null, booleans, integers, floats or strings.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::Yaml;

/// A value and the line (1-based) and column (1-based, in characters) it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub column: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    /// As written, so that nothing is lost before it is needed.
    Float(String),
    String {
        text: String,
        style: Style,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// How a string was written: a literal block (`|`) keeps its lines, so lines inside it can be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Literal,
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_line: usize,
    pub key_column: usize,
    pub value: Node,
}

/// How numbers become JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// Integers stay integers, floats stay floats.
    AsWritten,
    /// Every number is a double, as in a `google.protobuf.Struct` (an Istio `pluginConfig`, an Envoy
    /// Struct configuration), printed as protobuf JSON prints them: `403`, not `403.0`.
    Struct,
}

/// A document that is not YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LoadError {}

/// Loads every document of a YAML stream (JSON is YAML).
pub fn load(text: &str) -> Result<Vec<Node>, LoadError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| LoadError {
        line: e.marker().line(),
        message: e.info().to_owned(),
    })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    Ok(builder.docs)
}

/// A collection being built: the node, its anchor and, for a map, the key (and its line) that
/// waits for its value.
type Open = (Node, usize, Option<(String, usize, usize)>);

#[derive(Default)]
struct Builder {
    docs: Vec<Node>,
    stack: Vec<Open>,
    anchors: BTreeMap<usize, Node>,
    error: Option<LoadError>,
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        let column = mark.col() + 1;
        match event {
            Event::SequenceStart(anchor, _) => self.stack.push((
                Node {
                    line,
                    column,
                    kind: Kind::Seq(Vec::new()),
                },
                anchor,
                None,
            )),
            Event::MappingStart(anchor, _) => self.stack.push((
                Node {
                    line,
                    column,
                    kind: Kind::Map(Vec::new()),
                },
                anchor,
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, anchor, _)) = self.stack.pop() {
                    self.insert(node, anchor);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let forced_string = tag.is_some_and(|t| t.suffix == "str");
                let kind = if style != TScalarStyle::Plain || forced_string {
                    Kind::String {
                        text,
                        style: if style == TScalarStyle::Literal {
                            Style::Literal
                        } else {
                            Style::Other
                        },
                    }
                } else {
                    match Yaml::from_str(&text) {
                        Yaml::Null => Kind::Null,
                        Yaml::Boolean(b) => Kind::Bool(b),
                        Yaml::Integer(i) => Kind::Int(i),
                        Yaml::Real(r) => Kind::Float(r),
                        _ => Kind::String {
                            text,
                            style: Style::Other,
                        },
                    }
                };
                self.insert(Node { line, column, kind }, anchor);
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor) {
                Some(node) => {
                    let node = Node {
                        line,
                        column,
                        ..node.clone()
                    };
                    self.insert(node, 0);
                }
                None => {
                    self.error = Some(LoadError {
                        line,
                        message: "alias to an unknown anchor".into(),
                    })
                }
            },
            Event::DocumentEnd | Event::DocumentStart | Event::StreamStart | Event::StreamEnd => {}
            Event::Nothing => {}
        }
    }
}

impl Builder {
    fn insert(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some((parent, _, pending_key)) = self.stack.last_mut() else {
            self.docs.push(node);
            return;
        };
        match &mut parent.kind {
            Kind::Seq(items) => items.push(node),
            Kind::Map(entries) => match pending_key.take() {
                None => match scalar_key(&node) {
                    Some(key) => *pending_key = Some((key, node.line, node.column)),
                    None => {
                        self.error = Some(LoadError {
                            line: node.line,
                            message: "a mapping key must be a scalar".into(),
                        })
                    }
                },
                Some((key, key_line, key_column)) => {
                    if entries.iter().any(|e| e.key == key) {
                        self.error = Some(LoadError {
                            line: key_line,
                            message: format!("duplicate key {key:?}"),
                        });
                        return;
                    }
                    entries.push(Entry {
                        key,
                        key_line,
                        key_column,
                        value: node,
                    });
                }
            },
            _ => {}
        }
    }
}

fn scalar_key(node: &Node) -> Option<String> {
    Some(match &node.kind {
        Kind::String { text, .. } => text.clone(),
        Kind::Null => String::new(),
        Kind::Bool(b) => b.to_string(),
        Kind::Int(i) => i.to_string(),
        Kind::Float(f) => f.clone(),
        Kind::Seq(_) | Kind::Map(_) => return None,
    })
}

impl Node {
    /// The value of a mapping's key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn is_map(&self) -> bool {
        matches!(self.kind, Kind::Map(_))
    }

    /// The node as JSON.
    pub fn to_json(&self, numbers: Numbers) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => match numbers {
                Numbers::AsWritten => Value::from(*i),
                Numbers::Struct => struct_number(*i as f64),
            },
            Kind::Float(text) => {
                let parsed = parse_float(text);
                match numbers {
                    Numbers::AsWritten => serde_json::Number::from_f64(parsed)
                        .map_or_else(|| Value::String(text.clone()), Value::Number),
                    Numbers::Struct => struct_number(parsed),
                }
            }
            Kind::String { text, .. } => Value::String(text.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(|n| n.to_json(numbers)).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json(numbers)))
                    .collect(),
            ),
        }
    }

    /// The line of the field at `path` (such as `grpc_service.initial_metadata[0].key`), or of the
    /// deepest part of it that exists. A key is matched as written or by its snake_case form, as
    /// the config accepts lowerCamelCase aliases.
    pub fn line_of(&self, path: &str) -> usize {
        self.position_of(path).0
    }

    /// The line and column of the field at `path`, as [`Node::line_of`] finds it.
    pub fn position_of(&self, path: &str) -> (usize, usize) {
        let segments = segments(path);
        let mut node = self;
        let mut position = (self.line, self.column);
        let mut i = 0;
        while i < segments.len() {
            let next = match (&segments[i], &node.kind) {
                (Segment::Key(_), Kind::Map(entries)) => {
                    // A map key may hold dots (`context_extensions.a.b`): try the longest first.
                    (i..segments.len()).rev().find_map(|last| {
                        let key = joined_keys(&segments[i..=last])?;
                        entries
                            .iter()
                            .find(|e| e.key == key)
                            .or_else(|| entries.iter().find(|e| snake_case(&e.key) == key))
                            .map(|e| (last, (e.key_line, e.key_column), &e.value))
                    })
                }
                (Segment::Index(index), Kind::Seq(items)) => {
                    items.get(*index).map(|n| (i, (n.line, n.column), n))
                }
                _ => None,
            };
            let Some((last, next_position, next_node)) = next else {
                break;
            };
            position = next_position;
            node = next_node;
            i = last + 1;
        }
        position
    }
}

/// `a`, `b` -> `a.b`; `None` when an index is among them.
fn joined_keys(segments: &[Segment<'_>]) -> Option<String> {
    let mut keys = Vec::with_capacity(segments.len());
    for segment in segments {
        match segment {
            Segment::Key(key) => keys.push(*key),
            Segment::Index(_) => return None,
        }
    }
    Some(keys.join("."))
}

/// A double as protobuf JSON prints it: integral values without a fraction.
fn struct_number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

fn parse_float(text: &str) -> f64 {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => f64::INFINITY,
        "-.inf" | "-.Inf" | "-.INF" => f64::NEG_INFINITY,
        ".nan" | ".NaN" | ".NAN" => f64::NAN,
        _ => text.parse().unwrap_or(f64::NAN),
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[0].c` into `a`, `b`, `0`, `c`.
fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(i) = index.parse() {
                out.push(Segment::Index(i));
            }
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    out
}

/// `grpcService` -> `grpc_service`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn remembers_lines_of_keys_and_values() {
        let docs =
            load("a: 1\nb:\n  c: |\n    {\n      \"x\": 1\n    }\n  d: [x, {e: 2}]\n").unwrap();
        let doc = &docs[0];
        assert_eq!(doc.line_of("a"), 1);
        assert_eq!(doc.line_of("b.c"), 3);
        assert_eq!(doc.get("b").unwrap().get("c").unwrap().line, 4);
        assert_eq!(doc.line_of("b.d[1].e"), 7);
        // The deepest part that exists.
        assert_eq!(doc.line_of("b.missing.x"), 2);
        let docs = load("m:\n  x: 1\n  a.b: 2\n").unwrap();
        assert_eq!(docs[0].line_of("m.a.b"), 3);
    }

    #[test]
    fn finds_camel_case_keys_by_their_snake_case_path() {
        let docs = load("{\n\"grpcService\": {\n  \"envoyGrpc\": {}}}").unwrap();
        assert_eq!(docs[0].line_of("grpc_service.envoy_grpc"), 3);
    }

    #[test]
    fn types_scalars_as_yaml_1_2_and_keeps_quoted_strings() {
        let docs = load("a: 403\nb: '403'\nc: true\nd: 0.5s\ne: ~\nf: 1.5\n").unwrap();
        let json = docs[0].to_json(Numbers::AsWritten);
        assert_eq!(
            json,
            serde_json::json!({"a": 403, "b": "403", "c": true, "d": "0.5s", "e": null, "f": 1.5})
        );
    }

    #[test]
    fn struct_numbers_print_as_protobuf_json_does() {
        let docs = load("a: 403\nb: 403.0\nc: 0.5\n").unwrap();
        assert_eq!(
            docs[0].to_json(Numbers::Struct),
            serde_json::json!({"a": 403, "b": 403, "c": 0.5})
        );
    }

    #[test]
    fn loads_every_document_and_refuses_duplicates() {
        assert_eq!(load("a: 1\n---\nb: 2\n").unwrap().len(), 2);
        let error = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(load("a: [1\n").is_err());
    }

    #[test]
    fn aliases_copy_their_anchor() {
        let docs = load("a: &x {b: 1}\nc: *x\n").unwrap();
        assert_eq!(docs[0].to_json(Numbers::AsWritten)["c"]["b"], 1);
    }
}
