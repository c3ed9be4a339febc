//! The stable contract between the `dmagent` plugin host and the plugins that
//! vendors build: post-install handlers and report collectors.
//!
//! This crate is the API boundary of the project. Its C ABI is versioned apart
//! from the crate version; the contract itself is specified by the plugin issue
//! and lands with it. Until then the crate only fixes the version constants so
//! that the host and the plugins agree on where the numbers live.
#![deny(missing_docs)]

/// Major version of the plugin ABI: a plugin built for another major is refused.
pub const ABI_MAJOR: u32 = 0;
/// Minor version of the plugin ABI: tables only grow at the end within one major.
pub const ABI_MINOR: u32 = 0;
