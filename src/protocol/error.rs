//! Typed decode errors that name the element or attribute at fault.

/// Why a document was refused. The variants are filled in with the codec.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The XML is not well formed.
    Malformed,
}

/// A decode failure: what went wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?} at {path}")]
pub struct DecodeError {
    /// What was wrong.
    pub kind: DecodeErrorKind,
    /// The element path (`PollResponse/Settings/ClientSettings/PollInterval`),
    /// with `/@attr` for attributes.
    pub path: String,
}
