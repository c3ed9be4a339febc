//! [`StoreError`]: everything that can go wrong with the client database.

use std::io;
use std::path::{Path, PathBuf};

/// An error of the client database. [`StoreError::kind`] gives a stable,
/// machine-readable name for logs and exit codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation around the database failed.
    #[error("client database {}: {source}", path.display())]
    Io {
        /// The database file (or its directory).
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// The file exists but is not a redb database.
    #[error(
        "{} is not a client database (not a redb file); \
         move it away or point the agent at another path",
        path.display()
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },

    /// Another process (or another `Store` in this process) has the database open.
    #[error(
        "client database {} is already open in another process \
         (is another dmagent running?)",
        path.display()
    )]
    Locked {
        /// The file.
        path: PathBuf,
    },

    /// The database was written by a newer agent; it was left untouched.
    #[error(
        "client database {} has schema version {found}, written by a newer agent; \
         this agent supports up to version {supported}. The file was left untouched",
        path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// The schema version in the file.
        found: u64,
        /// The newest schema version this agent understands.
        supported: u64,
    },

    /// The redb file format is one this redb version cannot open.
    #[error(
        "client database {} uses redb file format {format}, which needs an upgrade \
         this agent does not perform",
        path.display()
    )]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The redb file format version found.
        format: u8,
    },

    /// The database file is damaged.
    #[error("client database {} is corrupt: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What redb reported.
        detail: String,
    },

    /// Any other error reported by redb.
    #[error("client database {}: {source}", path.display())]
    Database {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<redb::Error>,
    },

    /// A stored value could not be decoded.
    #[error("client database: cannot decode {table}[{key}]: {source}")]
    Decode {
        /// The table.
        table: String,
        /// The row key.
        key: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },

    /// A value could not be encoded.
    #[error("client database: cannot encode {table}[{key}]: {source}")]
    Encode {
        /// The table.
        table: String,
        /// The row key.
        key: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },

    /// A record was refused before it was written.
    #[error("client database: invalid record: {0}")]
    InvalidRecord(String),
}

impl StoreError {
    /// A stable name for the error class: `io`, `not-a-database`, `locked`,
    /// `newer-schema`, `unsupported-format`, `corrupt`, `database`, `decode`,
    /// `encode`, `invalid-record`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Io { .. } => "io",
            StoreError::NotADatabase { .. } => "not-a-database",
            StoreError::Locked { .. } => "locked",
            StoreError::NewerSchema { .. } => "newer-schema",
            StoreError::UnsupportedFormat { .. } => "unsupported-format",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::Database { .. } => "database",
            StoreError::Decode { .. } => "decode",
            StoreError::Encode { .. } => "encode",
            StoreError::InvalidRecord(_) => "invalid-record",
        }
    }

    /// The database path the error is about, if it names one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            StoreError::Io { path, .. }
            | StoreError::NotADatabase { path }
            | StoreError::Locked { path }
            | StoreError::NewerSchema { path, .. }
            | StoreError::UnsupportedFormat { path, .. }
            | StoreError::Corrupt { path, .. }
            | StoreError::Database { path, .. } => Some(path),
            StoreError::Decode { .. }
            | StoreError::Encode { .. }
            | StoreError::InvalidRecord(_) => None,
        }
    }

    /// Map any redb error about the database at `path`.
    pub(crate) fn redb(path: &Path, err: impl Into<redb::Error>) -> Self {
        let path = path.to_path_buf();
        match err.into() {
            redb::Error::DatabaseAlreadyOpen => StoreError::Locked { path },
            redb::Error::UpgradeRequired(format) => StoreError::UnsupportedFormat { path, format },
            redb::Error::Corrupted(detail) => StoreError::Corrupt { path, detail },
            redb::Error::Io(source) => StoreError::Io { path, source },
            source => StoreError::Database {
                path,
                source: Box::new(source),
            },
        }
    }
}

/// `?`-friendly mapping of redb results to [`StoreError`] with the path.
pub(crate) trait RedbResultExt<T> {
    /// Attach the database path to a redb error.
    fn at(self, path: &Path) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> RedbResultExt<T> for Result<T, E> {
    fn at(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::redb(path, e))
    }
}
