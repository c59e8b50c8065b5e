//! Every error of a config in one reading, not only the first: a field refused (by the refused
//! list, or by `config::reader`) is taken for absent and the reading goes on, up to [`MAX_ERRORS`].
//!
//! Taking a field for absent can itself cause errors: a required field refused is then "missing",
//! an object whose one part was refused "takes exactly one of" its parts. Such follow-on errors are
//! not the user's and are not reported: [`Removals::excuses`] says which. Paths are reported in
//! the document's own indexing, as if nothing had been removed from its arrays.

use serde_json::Value;

use super::error::{ConfigError, ConfigErrors};
use super::json_path::{self, Segment};

/// The most errors one reading looks for: enough for any config written by hand, and a bound
/// on how often a document is read again.
pub const MAX_ERRORS: usize = 20;

/// What a reading took out of the document, to place and excuse later errors by.
#[derive(Debug, Default)]
pub(super) struct Removals {
    /// Paths taken out, in the document's own indexing, keys as written.
    pub(super) removed: Vec<Vec<Segment>>,
    /// Fields an unknown key was taken for, `did you mean` them: their absence is the typo's.
    pub(super) meant: Vec<Vec<Segment>>,
}

impl Removals {
    /// Takes the field at `path` (in `value`'s current indexing) out of `value`; false if the path
    /// is the document itself or no longer there.
    pub(super) fn take_out(&mut self, value: &mut Value, path: &[Segment]) -> bool {
        let original = self.original(path);
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut node = value;
        for segment in parents {
            let next = match (segment, node) {
                (Segment::Key(key), Value::Object(map)) => map.get_mut(key),
                (Segment::Index(i), Value::Array(items)) => items.get_mut(*i),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => return false,
            }
        }
        let taken = match (last, node) {
            (Segment::Key(key), Value::Object(map)) if map.contains_key(key) => {
                // Built again rather than `remove`d: insertion is in the module already, a
                // B-tree's removal would be 5 KB more of it.
                let mut kept = serde_json::Map::new();
                for (k, v) in std::mem::take(map) {
                    if k != *key {
                        kept.insert(k, v);
                    }
                }
                *map = kept;
                true
            }
            (Segment::Index(i), Value::Array(items)) if *i < items.len() => {
                items.remove(*i);
                true
            }
            _ => false,
        };
        if taken {
            self.removed.push(original);
        }
        taken
    }

    /// `path`, read in the current document, in the document's own indexing: each index moved
    /// past the elements taken out before it.
    pub(super) fn original(&self, path: &[Segment]) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::with_capacity(path.len());
        for segment in path {
            let segment = match segment {
                Segment::Index(current) => {
                    let gone: Vec<usize> = self
                        .removed
                        .iter()
                        .filter_map(|r| match r.split_last() {
                            Some((Segment::Index(i), parent)) if same(parent, &out) => Some(*i),
                            _ => None,
                        })
                        .collect();
                    // The least index with `current` elements left before it: moved on past
                    // each element taken out until none is left to pass (no sort needed).
                    let mut index = *current;
                    loop {
                        let next = current + gone.iter().filter(|&&i| i <= index).count();
                        if next == index {
                            break;
                        }
                        index = next;
                    }
                    Segment::Index(index)
                }
                key => key.clone(),
            };
            out.push(segment);
        }
        out
    }

    /// Whether an error at `field` (in the document's own indexing) may be the doing of what was
    /// taken out: it is about a field taken out, something inside one, an object one was taken
    /// out of, or a field an unknown key was taken for; or it says a field `is required` beside
    /// one taken out (one of several fields is required, and the one given was taken out).
    pub(super) fn excuses(&self, field: &[Segment], reason: &str) -> bool {
        let required = reason.starts_with("is required");
        let parent = &field[..field.len().saturating_sub(1)];
        self.meant.iter().any(|m| same(m, field))
            || self.removed.iter().any(|r| {
                starts_with(field, r)
                    || (!field.is_empty() && starts_with(r, field))
                    || (required && r.len() == field.len() && starts_with(r, parent))
            })
    }
}

impl Removals {
    /// Validation's errors (of what was read once fields were taken out) added to `errors`,
    /// placed in the document's own indexing, less those the removals excuse.
    pub(super) fn add(&self, validation: ConfigErrors, errors: &mut ConfigErrors) {
        let had = errors.len();
        let mut first = None;
        for error in validation {
            if errors.len() >= MAX_ERRORS {
                break;
            }
            if self.removed.is_empty() {
                errors.push(error);
                continue;
            }
            let field = self.original(&json_path::parse(&error.field));
            if self.excuses(&field, &error.reason) {
                first.get_or_insert(error);
            } else {
                errors.push(ConfigError::new(json_path::render(&field), error.reason));
            }
        }
        // Never refused without a reason, even if every reason was excused.
        if errors.len() == had && had == 0 {
            if let Some(error) = first {
                errors.push(error);
            }
        }
    }
}

/// Two paths alike, keys compared as the config reads them (snake_case or lowerCamelCase).
fn same(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len() && starts_with(a, b)
}

/// Whether `path` is `prefix` or lies inside it.
fn starts_with(path: &[Segment], prefix: &[Segment]) -> bool {
    path.len() >= prefix.len()
        && path.iter().zip(prefix).all(|pair| match pair {
            (Segment::Key(a), Segment::Key(b)) => fold(a) == fold(b),
            (Segment::Index(a), Segment::Index(b)) => a == b,
            _ => false,
        })
}

fn fold(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_owned())
    }

    #[test]
    fn indexes_are_given_in_the_document_as_written() {
        let mut value = serde_json::json!({"a": [0, 1, 2, 3, 4, {"b": [5, 6]}]});
        let mut removals = Removals::default();
        // Take out [1], then what is now [2] (first [3]), then [3].b[0].
        assert!(removals.take_out(&mut value, &[key("a"), Segment::Index(1)]));
        assert!(removals.take_out(&mut value, &[key("a"), Segment::Index(2)]));
        assert_eq!(value, serde_json::json!({"a": [0, 2, 4, {"b": [5, 6]}]}));
        let at =
            |removals: &Removals, path: &[Segment]| json_path::render(&removals.original(path));
        assert_eq!(at(&removals, &[key("a"), Segment::Index(0)]), "a[0]");
        assert_eq!(at(&removals, &[key("a"), Segment::Index(1)]), "a[2]");
        assert_eq!(at(&removals, &[key("a"), Segment::Index(2)]), "a[4]");
        assert!(removals.take_out(
            &mut value,
            &[key("a"), Segment::Index(3), key("b"), Segment::Index(0)]
        ));
        assert_eq!(
            at(
                &removals,
                &[key("a"), Segment::Index(3), key("b"), Segment::Index(0)]
            ),
            "a[5].b[1]"
        );
        // Keys are compared as the config reads them.
        assert!(removals.excuses(&json_path::parse("a[5].b[0]"), ""));
        assert!(!removals.excuses(&json_path::parse("a[4]"), ""));
        // Neither the document itself nor what is not there can be taken out.
        assert!(!removals.take_out(&mut value, &[]));
        assert!(!removals.take_out(&mut value, &[key("zz")]));
    }
}
