//! The stable contract between the `dmagent` plugin host and the plugins that
//! vendors build: post-install handlers and report collectors.
//!
//! This crate is the API boundary of the project (see `ABI.md` beside this
//! crate for the rules and the version history). It has three layers:
//!
//! - [`abi`]: the C ABI itself: version numbers, the exported symbol, the
//!   `#[repr(C)]` tables [`PluginDescriptor`] and [`HostApi`]. The C header
//!   `include/dmagent_plugin.h` is generated from it.
//! - [`types`]: the versioned JSON payloads that cross the ABI as bytes.
//! - [`PostInstallHandler`], [`ReportCollector`] and [`export_plugin!`]: the
//!   safe Rust side: implement a trait, invoke the macro, build a `cdylib`.
//!
//! The ABI version ([`ABI_MAJOR`].[`ABI_MINOR`]) is kept apart from the crate
//! version: the crate may gain helpers without the ABI moving.
#![deny(missing_docs)]
// The C ABI needs raw pointers and an unsafe `Sync` promise for a static
// table; every unsafe block says why it holds.
#![allow(unsafe_code)]

pub mod abi;
mod bridge;
#[cfg(test)]
mod header;
pub mod types;
pub mod util;

pub use abi::*;
pub use types::*;

/// A post-install handler: runs a package's command line after download.
pub trait PostInstallHandler {
    /// Runs the request. An `Err` reaches the agent as a plugin error
    /// (return code [`RC_PLUGIN_ERROR`]); a panic is caught and reported.
    fn run(&self, request: PostInstallRequest) -> Result<PostInstallResult, PluginError>;
}

/// A report collector: contributes to one or more report kinds.
pub trait ReportCollector {
    /// Collects one report. Called once per report the agent builds.
    fn collect(&self, request: CollectRequest) -> Result<CollectResult, PluginError>;
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bridge::{dispatch_collect, dispatch_post_install};
}

/// Exports a plugin: generates the static [`PluginDescriptor`] and the
/// `extern "C"` entry point `dmagent_plugin_v1`, with every call wrapped in
/// `catch_unwind` and the plugin's `tracing` events bridged to the host.
///
/// ```ignore
/// struct Exec;
/// impl PostInstallHandler for Exec { /* ... */ }
/// dmagent_plugin_api::export_plugin!(post_install {
///     name: "exec", handler: Exec,
/// });
///
/// struct Machine;
/// impl ReportCollector for Machine { /* ... */ }
/// dmagent_plugin_api::export_plugin!(collector {
///     name: "machine-inventory",
///     reports: dmagent_plugin_api::REPORT_MACHINE, collector: Machine,
/// });
/// ```
///
/// The handler expression is evaluated once per call (a unit struct is the
/// usual choice). `name` must be a string literal without NUL bytes; the
/// version is the plugin crate's own `CARGO_PKG_VERSION`.
#[macro_export]
macro_rules! export_plugin {
    (post_install { name: $name:literal, handler: $handler:expr $(,)? }) => {
        $crate::export_plugin!(@descriptor $name, $crate::KIND_POST_INSTALL, 0);
        extern "C" fn __dmagent_plugin_call(
            host: *const $crate::HostApi,
            request: *const u8,
            request_len: usize,
        ) -> i32 {
            // SAFETY: the host passes a valid `HostApi` and a request buffer of
            // `request_len` bytes, both borrowed for this call (ABI.md).
            unsafe {
                $crate::__private::dispatch_post_install(host, request, request_len, $name, &$handler)
            }
        }
    };
    (collector { name: $name:literal, reports: $reports:expr, collector: $collector:expr $(,)? }) => {
        $crate::export_plugin!(@descriptor $name, $crate::KIND_REPORT_COLLECTOR, $reports);
        extern "C" fn __dmagent_plugin_call(
            host: *const $crate::HostApi,
            request: *const u8,
            request_len: usize,
        ) -> i32 {
            // SAFETY: the host passes a valid `HostApi` and a request buffer of
            // `request_len` bytes, both borrowed for this call (ABI.md).
            unsafe {
                $crate::__private::dispatch_collect(host, request, request_len, $name, &$collector)
            }
        }
    };
    (@descriptor $name:literal, $kind:expr, $reports:expr) => {
        static __DMAGENT_PLUGIN_DESCRIPTOR: $crate::PluginDescriptor = $crate::PluginDescriptor {
            struct_size: ::core::mem::size_of::<$crate::PluginDescriptor>() as u32,
            abi_major: $crate::ABI_MAJOR,
            abi_minor: $crate::ABI_MINOR,
            kind: $kind,
            name: ::core::concat!($name, "\0").as_ptr().cast(),
            version: ::core::concat!(::core::env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast(),
            report_kinds: $reports,
            call: __dmagent_plugin_call,
        };

        /// The plugin's entry point: its static descriptor.
        #[no_mangle]
        pub extern "C" fn dmagent_plugin_v1() -> *const $crate::PluginDescriptor {
            &__DMAGENT_PLUGIN_DESCRIPTOR
        }
    };
}
