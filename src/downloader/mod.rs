//! The download engine and the downloader actor.

pub mod actor;
