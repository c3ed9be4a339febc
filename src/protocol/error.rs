//! Typed decode errors that name the element or attribute at fault, and the
//! [`Limits`] every decoder enforces.

use std::fmt;

/// Resource caps applied by every decoder.
///
/// The size cap is checked before any parsing; the depth cap while parsing
/// (so a deep nest fails at the first element past the limit); the string cap
/// on every text value and attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted document, in bytes (default 4 MiB).
    pub max_size: usize,
    /// Deepest accepted element nesting, the root counting as 1 (default 32).
    pub max_depth: usize,
    /// Longest accepted text or attribute value, in bytes after unescaping
    /// (default 64 KiB).
    pub max_string: usize,
}

impl Limits {
    /// 4 MiB.
    pub const DEFAULT_MAX_SIZE: usize = 4 * 1024 * 1024;
    /// 32 levels.
    pub const DEFAULT_MAX_DEPTH: usize = 32;
    /// 64 KiB.
    pub const DEFAULT_MAX_STRING: usize = 64 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: Self::DEFAULT_MAX_SIZE,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_string: Self::DEFAULT_MAX_STRING,
        }
    }
}

/// Why a document (or a single literal) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input is empty or holds only whitespace, comments and declarations.
    Empty,
    /// The input is larger than [`Limits::max_size`]; nothing was parsed.
    TooLarge {
        /// The configured cap in bytes.
        limit: usize,
        /// The size of the input in bytes.
        size: usize,
    },
    /// The input is not UTF-8.
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The XML is not well formed (truncated, mismatched or unclosed tags,
    /// content outside the root, an invalid character reference, ...).
    Malformed {
        /// What the parser objected to.
        reason: String,
    },
    /// The document carries a DOCTYPE declaration (refused so that entity
    /// declarations are never seen, let alone expanded).
    DoctypeForbidden,
    /// An entity reference other than the five predefined ones.
    EntityForbidden {
        /// The entity name, without `&` and `;`.
        name: String,
    },
    /// Elements nest deeper than [`Limits::max_depth`].
    TooDeep {
        /// The configured cap.
        limit: usize,
    },
    /// A text or attribute value is longer than [`Limits::max_string`].
    TooLong {
        /// The configured cap in bytes.
        limit: usize,
    },
    /// The root element is not the one the decoder expects.
    WrongRoot {
        /// The expected local name.
        expected: &'static str,
        /// The local name found.
        found: String,
    },
    /// A required element or attribute is absent.
    Missing,
    /// A value does not have the expected shape.
    InvalidValue {
        /// The offending value (cut to 64 characters).
        value: String,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// A number does not fit its type (too large, or negative for an
    /// unsigned field). Never wrapped.
    Overflow {
        /// The offending value (cut to 64 characters).
        value: String,
        /// The target type, in words.
        target: &'static str,
    },
}

impl DecodeErrorKind {
    /// A stable, machine-readable name of the variant (`"too_deep"`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLarge { .. } => "too_large",
            Self::NotUtf8 { .. } => "not_utf8",
            Self::Malformed { .. } => "malformed",
            Self::DoctypeForbidden => "doctype_forbidden",
            Self::EntityForbidden { .. } => "entity_forbidden",
            Self::TooDeep { .. } => "too_deep",
            Self::TooLong { .. } => "too_long",
            Self::WrongRoot { .. } => "wrong_root",
            Self::Missing => "missing",
            Self::InvalidValue { .. } => "invalid_value",
            Self::Overflow { .. } => "overflow",
        }
    }

    pub(crate) fn invalid(value: &str, expected: &'static str) -> Self {
        Self::InvalidValue {
            value: clip(value),
            expected,
        }
    }

    pub(crate) fn overflow(value: &str, target: &'static str) -> Self {
        Self::Overflow {
            value: clip(value),
            target,
        }
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::Malformed {
            reason: reason.into(),
        }
    }
}

fn clip(value: &str) -> String {
    const MAX: usize = 64;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

/// The kind phrased without a location, e.g. for a literal parsed with
/// `FromStr`.
impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the document is empty"),
            Self::TooLarge { limit, size } => write!(
                f,
                "the document is {size} bytes, larger than the limit of {limit} bytes"
            ),
            Self::NotUtf8 { offset } => {
                write!(f, "the document is not valid UTF-8 (at byte {offset})")
            }
            Self::Malformed { reason } => write!(f, "the XML is malformed: {reason}"),
            Self::DoctypeForbidden => f.write_str("a DOCTYPE declaration is not allowed"),
            Self::EntityForbidden { name } => {
                write!(f, "the entity reference `&{name};` is not allowed")
            }
            Self::TooDeep { limit } => {
                write!(f, "elements nest deeper than the limit of {limit} levels")
            }
            Self::TooLong { limit } => {
                write!(f, "a value is longer than the limit of {limit} bytes")
            }
            Self::WrongRoot { expected, found } => {
                write!(f, "the root element is `{found}`, expected `{expected}`")
            }
            Self::Missing => f.write_str("a required element or attribute is missing"),
            Self::InvalidValue { value, expected } => {
                write!(f, "the value {value:?} is not {expected}")
            }
            Self::Overflow { value, target } => {
                write!(f, "the value {value:?} is out of range for {target}")
            }
        }
    }
}

impl std::error::Error for DecodeErrorKind {}

/// A decode failure: what went wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What was wrong.
    pub kind: DecodeErrorKind,
    /// The element path (`PollResponse/Settings/ClientSettings/PollInterval`),
    /// with `/@attr` for attributes; empty when the fault is the document as a
    /// whole (size, encoding, emptiness).
    pub path: String,
}

impl DecodeError {
    /// Builds an error at `path`.
    pub fn new(kind: DecodeErrorKind, path: impl Into<String>) -> Self {
        DecodeError {
            kind,
            path: path.into(),
        }
    }

    /// The stable name of the kind (see [`DecodeErrorKind::as_str`]).
    pub fn kind(&self) -> &'static str {
        self.kind.as_str()
    }

    fn subject(&self) -> String {
        match self.path.rsplit_once("/@") {
            Some(_) => format!("attribute `{}`", self.path),
            None if self.path.starts_with('@') => format!("attribute `{}`", self.path),
            None => format!("element `{}`", self.path),
        }
    }
}

impl From<DecodeErrorKind> for DecodeError {
    fn from(kind: DecodeErrorKind) -> Self {
        DecodeError::new(kind, "")
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            let s = self.kind.to_string();
            let mut c = s.chars();
            return match c.next() {
                Some(first) => write!(f, "{}{}", first.to_uppercase(), c.as_str()),
                None => Ok(()),
            };
        }
        let subject = self.subject();
        let path = &self.path;
        match &self.kind {
            DecodeErrorKind::Empty => write!(f, "The document is empty ({subject})"),
            DecodeErrorKind::TooLarge { limit, size } => write!(
                f,
                "The document is {size} bytes, larger than the limit of {limit} bytes"
            ),
            DecodeErrorKind::NotUtf8 { offset } => {
                write!(f, "The document is not valid UTF-8 (at byte {offset})")
            }
            DecodeErrorKind::Malformed { reason } => {
                write!(f, "The XML is malformed in {subject}: {reason}")
            }
            DecodeErrorKind::DoctypeForbidden => {
                f.write_str("The document has a DOCTYPE declaration, which is not allowed")
            }
            DecodeErrorKind::EntityForbidden { name } => write!(
                f,
                "The entity reference `&{name};` in {subject} is not allowed \
                 (only the five predefined entities and character references are)"
            ),
            DecodeErrorKind::TooDeep { limit } => write!(
                f,
                "The document nests elements deeper than the limit of {limit} levels, at `{path}`"
            ),
            DecodeErrorKind::TooLong { limit } => write!(
                f,
                "The value of {subject} is longer than the limit of {limit} bytes"
            ),
            DecodeErrorKind::WrongRoot { expected, found } => write!(
                f,
                "The root element is `{found}`, but `{expected}` was expected"
            ),
            DecodeErrorKind::Missing => write!(f, "The required {subject} is missing"),
            DecodeErrorKind::InvalidValue { value, expected } => write!(
                f,
                "The value {value:?} of {subject} is not valid: expected {expected}"
            ),
            DecodeErrorKind::Overflow { value, target } => write!(
                f,
                "The value {value:?} of {subject} is out of range for {target}"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_like_a_sentence() {
        let e = DecodeError::new(
            DecodeErrorKind::invalid("abc", "a duration"),
            "PollResponse/Settings/ClientSettings/PollInterval",
        );
        assert_eq!(
            e.to_string(),
            "The value \"abc\" of element `PollResponse/Settings/ClientSettings/PollInterval` \
             is not valid: expected a duration"
        );
        let e = DecodeError::new(DecodeErrorKind::Missing, "Status/StatusMessage/@messageID");
        assert_eq!(
            e.to_string(),
            "The required attribute `Status/StatusMessage/@messageID` is missing"
        );
        assert_eq!(e.kind(), "missing");
        let e = DecodeError::from(DecodeErrorKind::Empty);
        assert_eq!(e.to_string(), "The document is empty");
    }
}
