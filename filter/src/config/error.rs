//! `ConfigError`: one error of configuration, naming the field it is about; `ConfigErrors`: every
//! error of one configuration, as the checker and the load-time log report them.

use std::fmt;

/// A configuration that was refused: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field's path, such as `grpc_service.envoy_grpc.cluster_name`; empty for the whole document.
    pub field: String,
    pub reason: String,
}

impl ConfigError {
    pub(super) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every error of a refused configuration, in the order they were found; never empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first error: the one a reader that stops at the first would have given.
    pub fn into_first(self) -> ConfigError {
        self.0
            .into_iter()
            .next()
            .unwrap_or_else(|| ConfigError::new("", "is refused"))
    }

    pub(super) fn push(&mut self, error: ConfigError) {
        self.0.push(error);
    }

    /// The value of a section judged, or its error kept and `None`, so that the next section is
    /// judged too.
    pub(super) fn take<T>(&mut self, judged: Result<T, ConfigError>) -> Option<T> {
        judged.map_err(|error| self.push(error)).ok()
    }

    /// The same, for a section that reports several errors.
    pub(super) fn take_all<T>(&mut self, judged: Result<T, ConfigErrors>) -> Option<T> {
        judged.map_err(|errors| self.0.extend(errors.0)).ok()
    }

    /// One line per error, at most `cap`, then `and N more`: for a log that a person reads.
    pub fn lines(&self, cap: usize) -> Vec<String> {
        let mut lines: Vec<String> = self.0.iter().take(cap).map(ToString::to_string).collect();
        if self.0.len() > cap {
            lines.push(format!(
                "and {} more (`ext-authz-config check` lists them all)",
                self.0.len() - cap
            ));
        }
        lines
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
