//! The client database on redb.
