//! The only place in the agent that touches raw pointers: opening a plugin
//! library, reading its descriptor and calling it. Runs inside the
//! plugin-host CHILD process, never in the agent itself; nothing returned from
//! here holds a raw pointer, and no library is ever unloaded (thread-local
//! destructors of a plugin would run after `dlclose`).
#![allow(unsafe_code)]

use std::ffi::{c_void, CStr};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Mutex;

use dmagent_plugin_api::{
    EntryFn, HostApi, PluginDescriptor, ABI_MAJOR, ABI_MINOR, DESCRIPTOR_MIN_SIZE, ENTRY_SYMBOL,
    ENTRY_SYMBOL_NUL,
};

use super::failure::FailureCause;
use super::PluginKind;

/// The effective uid of this process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Keeps the real stdout for the result and points fd 1 at stderr, so that a
/// plugin printing to stdout cannot corrupt the result channel.
pub(crate) fn take_stdout() -> std::io::Result<File> {
    // `try_clone_to_owned` duplicates with FD_CLOEXEC: commands a plugin
    // starts do not inherit the result channel.
    let saved: OwnedFd = std::io::stdout().as_fd().try_clone_to_owned()?;
    // SAFETY: dup2 on two descriptors this process owns (0..2 are open in the
    // child: the parent pipes all three); it replaces fd 1 atomically.
    let rc = unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(File::from(saved))
}

/// What the descriptor says, copied out of the library.
#[derive(Debug, Clone)]
pub(crate) struct Described {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub report_kinds: u32,
    pub abi_major: u32,
    pub abi_minor: u32,
}

/// A loaded plugin: its static descriptor (the library is leaked, so the
/// reference is valid for the rest of the process).
pub(crate) struct Loaded {
    descriptor: &'static PluginDescriptor,
    pub described: Described,
}

/// Opens the library behind `file` (already checked and hashed by the
/// caller; loading through `/proc/self/fd` loads exactly those bytes) and
/// validates its descriptor.
pub(crate) fn open(file: &File) -> Result<Loaded, FailureCause> {
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    // SAFETY: loading runs the library's initialisers; the file passed the
    // trust checks (owner, mode, digest) before this call, which is the
    // contract of this module. The library is never unloaded (forget below).
    let library =
        unsafe { libloading::Library::new(&path) }.map_err(|e| FailureCause::OpenFailed {
            detail: e.to_string(),
        })?;
    // SAFETY: the symbol's type is fixed by the ABI (`EntryFn`); a library
    // exporting it with another type is outside the contract it claims.
    let entry: EntryFn = match unsafe { library.get::<EntryFn>(ENTRY_SYMBOL_NUL) } {
        Ok(symbol) => *symbol,
        Err(e) => {
            std::mem::forget(library);
            return Err(FailureCause::MissingSymbol {
                symbol: ENTRY_SYMBOL.to_owned(),
                detail: e.to_string(),
            });
        }
    };
    // Never unloaded: thread-locals and statics of the plugin outlive calls.
    std::mem::forget(library);
    let ptr = entry();
    if ptr.is_null() {
        return Err(FailureCause::BadDescriptor {
            detail: "the entry point returned a null descriptor".into(),
        });
    }
    // SAFETY: `ptr` is non-null and points at the plugin's static descriptor,
    // which starts with `struct_size: u32`; every table of every ABI version
    // has at least that field.
    let struct_size = unsafe { std::ptr::addr_of!((*ptr).struct_size).read_unaligned() } as usize;
    if struct_size < 12 {
        return Err(FailureCause::BadDescriptor {
            detail: format!("struct_size {struct_size} is too small to hold a version"),
        });
    }
    // SAFETY: struct_size >= 12 covers `abi_major` (offset 4) and `abi_minor`
    // (offset 8), whose offsets never change within the contract.
    let (abi_major, abi_minor) = unsafe {
        (
            std::ptr::addr_of!((*ptr).abi_major).read_unaligned(),
            std::ptr::addr_of!((*ptr).abi_minor).read_unaligned(),
        )
    };
    if abi_major != ABI_MAJOR {
        return Err(FailureCause::AbiMismatch {
            plugin_major: abi_major,
            plugin_minor: abi_minor,
            host_major: ABI_MAJOR,
            host_minor: ABI_MINOR,
        });
    }
    if struct_size < DESCRIPTOR_MIN_SIZE {
        return Err(FailureCause::BadDescriptor {
            detail: format!(
                "struct_size {struct_size} is smaller than the ABI {ABI_MAJOR}.0 descriptor ({DESCRIPTOR_MIN_SIZE} bytes)"
            ),
        });
    }
    // SAFETY: the table is at least as large as ours, static, and immutable.
    let descriptor: &'static PluginDescriptor = unsafe { &*ptr };
    let name = static_str(descriptor.name, "name")?;
    let version = static_str(descriptor.version, "version")?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(FailureCause::BadDescriptor {
            detail: format!("name {name:?} is not [a-z0-9_-]+"),
        });
    }
    let kind = match descriptor.kind {
        dmagent_plugin_api::KIND_POST_INSTALL => PluginKind::PostInstall,
        dmagent_plugin_api::KIND_REPORT_COLLECTOR => PluginKind::ReportCollector,
        other => {
            return Err(FailureCause::BadDescriptor {
                detail: format!("unknown kind {other}"),
            })
        }
    };
    Ok(Loaded {
        descriptor,
        described: Described {
            name,
            version,
            kind,
            report_kinds: descriptor.report_kinds,
            abi_major,
            abi_minor,
        },
    })
}

fn static_str(ptr: *const std::ffi::c_char, what: &str) -> Result<String, FailureCause> {
    if ptr.is_null() {
        return Err(FailureCause::BadDescriptor {
            detail: format!("{what} is null"),
        });
    }
    // SAFETY: the contract makes `name`/`version` static NUL-terminated strings.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map(str::to_owned)
        .map_err(|_| FailureCause::BadDescriptor {
            detail: format!("{what} is not UTF-8"),
        })
}

/// The result of one call: the return code and a copy of the result bytes.
pub(crate) struct CallOutcome {
    pub rc: i32,
    pub result: Vec<u8>,
    /// Set when the plugin offered a result larger than the cap (not copied).
    pub oversized: bool,
}

/// Receives `(level, target, message)` of each plugin log event.
type LogSink = Box<dyn Fn(u32, &str, &str) + Send + Sync>;

/// Shared by the callbacks during a call. Only ever reached through `&`.
struct CallContext {
    result: Mutex<(Vec<u8>, bool)>,
    cap: usize,
    log: LogSink,
}

extern "C" fn set_result_cb(ctx: *mut c_void, data: *const u8, len: usize) {
    if ctx.is_null() {
        return;
    }
    // SAFETY: `ctx` is the `CallContext` that `call` lent for this call; it is
    // only read through shared references.
    let context = unsafe { &*(ctx as *const CallContext) };
    let Ok(mut slot) = context.result.lock() else {
        return;
    };
    if len > context.cap {
        *slot = (Vec::new(), true);
        return;
    }
    let bytes = if data.is_null() || len == 0 {
        Vec::new()
    } else {
        // SAFETY: the plugin guarantees `len` readable bytes at `data` for
        // the duration of this callback; they are copied before returning.
        unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
    };
    *slot = (bytes, false);
}

extern "C" fn log_cb(
    ctx: *mut c_void,
    level: u32,
    target: *const u8,
    target_len: usize,
    message: *const u8,
    message_len: usize,
) {
    if ctx.is_null() {
        return;
    }
    // SAFETY: as in `set_result_cb`.
    let context = unsafe { &*(ctx as *const CallContext) };
    let text = |ptr: *const u8, len: usize| {
        if ptr.is_null() || len == 0 {
            String::new()
        } else {
            // SAFETY: the plugin guarantees `len` readable bytes at `ptr` for
            // the duration of this callback; they are copied.
            String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(ptr, len.min(64 * 1024)) })
                .into_owned()
        }
    };
    (context.log)(
        level,
        &text(target, target_len),
        &text(message, message_len),
    );
}

impl Loaded {
    /// Calls the plugin with `request`; results above `cap` bytes are not copied.
    pub(crate) fn call(
        &self,
        request: &[u8],
        cap: usize,
        log: impl Fn(u32, &str, &str) + Send + Sync + 'static,
    ) -> CallOutcome {
        let context = CallContext {
            result: Mutex::new((Vec::new(), false)),
            cap,
            log: Box::new(log),
        };
        let host = HostApi {
            struct_size: std::mem::size_of::<HostApi>() as u32,
            abi_minor: ABI_MINOR,
            ctx: std::ptr::addr_of!(context) as *mut c_void,
            set_result: set_result_cb,
            log: log_cb,
        };
        let rc = (self.descriptor.call)(&host, request.as_ptr(), request.len());
        let (result, oversized) = context
            .result
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = std::io::stderr().flush();
        CallOutcome {
            rc,
            result,
            oversized,
        }
    }
}
