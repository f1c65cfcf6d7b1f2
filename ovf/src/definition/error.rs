//! Where a definition is wrong, and why.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::qualifiers::PropertyType;

/// A place in a definition file: `origin:line:column` (1-based; column counts characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub origin: Arc<str>,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// Why a definition file was refused. Every variant that concerns the file's content says
/// where (`file:line:column`).
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("cannot read appliance definition {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, a missing or unknown field, a value of the wrong TOML type.
    #[error("{at}: {message}")]
    Syntax { at: Location, message: String },
    #[error("{at}: property `{key}` has unknown type `{found}`; expected one of: {expected}")]
    UnknownType {
        at: Location,
        key: String,
        found: String,
        expected: String,
    },
    #[error("{at}: duplicate property key `{key}` (first defined on line {first_line})")]
    DuplicateKey {
        at: Location,
        key: String,
        first_line: usize,
    },
    #[error("{at}: property `{key}` has invalid qualifiers `{qualifiers}`: {reason}")]
    BadQualifiers {
        at: Location,
        key: String,
        qualifiers: String,
        reason: String,
    },
    #[error("{at}: default {default:?} of property `{key}` is not a valid {type_name}: {reason}")]
    DefaultWrongType {
        at: Location,
        key: String,
        default: String,
        type_name: PropertyType,
        reason: String,
    },
    #[error("{at}: default {default:?} of property `{key}` violates its own qualifier {reason}")]
    DefaultViolatesQualifier {
        at: Location,
        key: String,
        default: String,
        /// The qualifier and what is wrong: `MinLen(6): 3 characters, at least 6 required`.
        reason: String,
    },
    #[error(
        "{at}: {what} uses configuration `{id}`, which no deployment option declares (declared: {declared})"
    )]
    UnknownConfiguration {
        at: Location,
        what: String,
        id: String,
        declared: String,
    },
    #[error("{at}: cannot read the EULA file {path:?}: {reason}")]
    Eula {
        at: Location,
        path: String,
        reason: String,
    },
    /// Any other inconsistency (duplicate NIC, unknown network, ...).
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },
}

impl DefinitionError {
    /// Where in the file the problem is (`None` when the file could not be read at all).
    pub fn location(&self) -> Option<&Location> {
        match self {
            DefinitionError::Read { .. } => None,
            DefinitionError::Syntax { at, .. }
            | DefinitionError::UnknownType { at, .. }
            | DefinitionError::DuplicateKey { at, .. }
            | DefinitionError::BadQualifiers { at, .. }
            | DefinitionError::DefaultWrongType { at, .. }
            | DefinitionError::DefaultViolatesQualifier { at, .. }
            | DefinitionError::UnknownConfiguration { at, .. }
            | DefinitionError::Eula { at, .. }
            | DefinitionError::Invalid { at, .. } => Some(at),
        }
    }
}
