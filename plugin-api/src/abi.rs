//! The C ABI: version numbers, constants, the exported symbol and the two
//! `#[repr(C)]` tables. Tables begin with `struct_size` and only ever grow at
//! the end within one major version (ABI.md, "Versioning rules").

use std::ffi::{c_char, c_void};

/// Major version of the plugin ABI: a plugin built for another major is refused.
pub const ABI_MAJOR: u32 = 1;
/// Minor version of the plugin ABI: tables only grow at the end within one major.
pub const ABI_MINOR: u32 = 0;

/// The exported entry point's name; it carries the ABI major, so a library
/// built for another major has no symbol of this name at all.
pub const ENTRY_SYMBOL: &str = "dmagent_plugin_v1";
/// [`ENTRY_SYMBOL`] NUL-terminated, as `dlsym` wants it.
pub const ENTRY_SYMBOL_NUL: &[u8] = b"dmagent_plugin_v1\0";

/// `PluginDescriptor::kind`: a post-install handler.
pub const KIND_POST_INSTALL: u32 = 1;
/// `PluginDescriptor::kind`: a report collector.
pub const KIND_REPORT_COLLECTOR: u32 = 2;

/// `report_kinds` bit: the software inventory (`FileReport`).
pub const REPORT_SOFTWARE: u32 = 1;
/// `report_kinds` bit: the machine inventory (`Inventory`).
pub const REPORT_MACHINE: u32 = 2;
/// `report_kinds` bit: file collection (file selection only).
pub const REPORT_FILES: u32 = 4;

/// Return code: success; the result is the kind's result JSON.
pub const RC_OK: i32 = 0;
/// Return code: the plugin failed; the result is a [`crate::PluginError`] JSON.
pub const RC_PLUGIN_ERROR: i32 = 1;
/// Return code: a panic was caught; the result is the panic message (UTF-8).
pub const RC_PANIC: i32 = 2;

/// Log level passed to [`HostApi::log`]: error.
pub const LOG_ERROR: u32 = 1;
/// Log level: warning.
pub const LOG_WARN: u32 = 2;
/// Log level: info.
pub const LOG_INFO: u32 = 3;
/// Log level: debug.
pub const LOG_DEBUG: u32 = 4;
/// Log level: trace.
pub const LOG_TRACE: u32 = 5;

/// The plugin's one call: `request` is JSON (`request_len` bytes, not
/// NUL-terminated), borrowed for the call; the result goes back through
/// `host->set_result`; returns an `RC_*` code.
pub type CallFn =
    extern "C" fn(host: *const HostApi, request: *const u8, request_len: usize) -> i32;
/// `HostApi::set_result`: the host copies `len` bytes before returning.
pub type SetResultFn = extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize);
/// `HostApi::log`: one log event; the host copies both strings (UTF-8, not
/// NUL-terminated) before returning.
pub type LogFn = extern "C" fn(
    ctx: *mut c_void,
    level: u32,
    target: *const u8,
    target_len: usize,
    message: *const u8,
    message_len: usize,
);
/// The entry point's type: returns a pointer to a static descriptor.
pub type EntryFn = extern "C" fn() -> *const PluginDescriptor;

/// What a plugin says about itself: a static table that lives as long as the
/// library (which the host never unloads).
#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    /// `size_of::<PluginDescriptor>()` as the plugin was built; the host
    /// reads only fields that fit inside it and refuses anything smaller than
    /// the 1.0 table.
    pub struct_size: u32,
    /// [`ABI_MAJOR`] the plugin was built against.
    pub abi_major: u32,
    /// [`ABI_MINOR`] the plugin was built against.
    pub abi_minor: u32,
    /// [`KIND_POST_INSTALL`] or [`KIND_REPORT_COLLECTOR`].
    pub kind: u32,
    /// The plugin's name: static, NUL-terminated UTF-8, `[a-z0-9_-]+` (a
    /// post-install handler is chosen by it in a `CommandLine` prefix).
    pub name: *const c_char,
    /// The plugin's own version: static, NUL-terminated UTF-8.
    pub version: *const c_char,
    /// Collectors: the reports they contribute to (`REPORT_*` bits); 0 for handlers.
    pub report_kinds: u32,
    /// The one call.
    pub call: CallFn,
}

// SAFETY: a descriptor is immutable static data: its pointers refer to static
// NUL-terminated strings and its function pointer is thread-safe to copy.
unsafe impl Sync for PluginDescriptor {}

/// What the host offers a plugin during one call. Borrowed for that call only.
#[repr(C)]
#[derive(Debug)]
pub struct HostApi {
    /// `size_of::<HostApi>()` as the host was built.
    pub struct_size: u32,
    /// The host's [`ABI_MINOR`]: a plugin may use fields added in that minor.
    pub abi_minor: u32,
    /// Opaque host context: pass it back to the callbacks, never dereference it.
    pub ctx: *mut c_void,
    /// Hands over the call's result; the host copies the bytes. A later call
    /// replaces an earlier one.
    pub set_result: SetResultFn,
    /// Emits one log event (`LOG_*` level, target, message).
    pub log: LogFn,
}

/// Size of the 1.0 `PluginDescriptor` on this target: the smallest table the
/// host accepts.
pub const DESCRIPTOR_MIN_SIZE: usize = std::mem::size_of::<PluginDescriptor>();

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn descriptor_layout() {
        assert_eq!(offset_of!(PluginDescriptor, struct_size), 0);
        assert_eq!(offset_of!(PluginDescriptor, abi_major), 4);
        assert_eq!(offset_of!(PluginDescriptor, abi_minor), 8);
        assert_eq!(offset_of!(PluginDescriptor, kind), 12);
        assert_eq!(offset_of!(PluginDescriptor, name), 16);
        assert_eq!(offset_of!(PluginDescriptor, version), 24);
        assert_eq!(offset_of!(PluginDescriptor, report_kinds), 32);
        assert_eq!(offset_of!(PluginDescriptor, call), 40);
        assert_eq!(size_of::<PluginDescriptor>(), 48);
        assert_eq!(align_of::<PluginDescriptor>(), 8);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn host_api_layout() {
        assert_eq!(offset_of!(HostApi, struct_size), 0);
        assert_eq!(offset_of!(HostApi, abi_minor), 4);
        assert_eq!(offset_of!(HostApi, ctx), 8);
        assert_eq!(offset_of!(HostApi, set_result), 16);
        assert_eq!(offset_of!(HostApi, log), 24);
        assert_eq!(size_of::<HostApi>(), 32);
        assert_eq!(align_of::<HostApi>(), 8);
    }

    #[test]
    fn symbol_carries_the_major() {
        assert!(ENTRY_SYMBOL.ends_with(&format!("_v{ABI_MAJOR}")));
        assert_eq!(
            &ENTRY_SYMBOL_NUL[..ENTRY_SYMBOL.len()],
            ENTRY_SYMBOL.as_bytes()
        );
        assert_eq!(ENTRY_SYMBOL_NUL.last(), Some(&0));
    }
}
