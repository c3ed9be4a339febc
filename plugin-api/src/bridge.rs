//! The plugin side of a call: decode the request, run the trait method under
//! `catch_unwind` with the log bridge installed, hand the result back.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use std::sync::{Arc, Mutex};

use crate::{
    HostApi, PluginError, PostInstallHandler, ReportCollector, Request, LOG_DEBUG, LOG_ERROR,
    LOG_INFO, LOG_TRACE, LOG_WARN, RC_OK, RC_PANIC, RC_PLUGIN_ERROR,
};

/// Runs a post-install handler for the macro-generated entry point.
///
/// # Safety
/// `host` must point to a valid [`HostApi`] and `request` to `request_len`
/// readable bytes, both for the duration of the call.
pub unsafe fn dispatch_post_install<H: PostInstallHandler>(
    host: *const HostApi,
    request: *const u8,
    request_len: usize,
    name: &'static str,
    handler: &H,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        dispatch(host, request, request_len, |req| match req {
            Request::PostInstall(r) => encode(handler.run(r)),
            Request::Collect(_) => Err(PluginError::new(format!(
                "{name} is a post-install handler, not a report collector"
            ))),
        })
    }
}

/// Runs a report collector for the macro-generated entry point.
///
/// # Safety
/// As [`dispatch_post_install`].
pub unsafe fn dispatch_collect<C: ReportCollector>(
    host: *const HostApi,
    request: *const u8,
    request_len: usize,
    name: &'static str,
    collector: &C,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        dispatch(host, request, request_len, |req| match req {
            Request::Collect(r) => encode(collector.collect(r)),
            Request::PostInstall(_) => Err(PluginError::new(format!(
                "{name} is a report collector, not a post-install handler"
            ))),
        })
    }
}

fn encode<T: serde::Serialize>(r: Result<T, PluginError>) -> Result<Vec<u8>, PluginError> {
    let value = r?;
    serde_json::to_vec(&value).map_err(|e| PluginError::new(format!("cannot encode result: {e}")))
}

/// # Safety
/// As [`dispatch_post_install`].
unsafe fn dispatch(
    host: *const HostApi,
    request: *const u8,
    request_len: usize,
    run: impl FnOnce(Request) -> Result<Vec<u8>, PluginError>,
) -> i32 {
    if host.is_null() {
        return RC_PLUGIN_ERROR;
    }
    // SAFETY: non-null, and valid for the call by the caller's contract.
    let host = unsafe { &*host };
    let bytes: &[u8] = if request.is_null() || request_len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees `request_len` readable bytes at `request`.
        unsafe { std::slice::from_raw_parts(request, request_len) }
    };
    let shared = Arc::new(Mutex::new(HostPtr(host)));
    let bridge = LogBridge {
        host: Arc::clone(&shared),
    };
    let outcome = tracing::subscriber::with_default(bridge, || {
        catch_unwind(AssertUnwindSafe(|| {
            let req: Request = serde_json::from_slice(bytes)
                .map_err(|e| PluginError::new(format!("cannot decode request: {e}")))?;
            run(req)
        }))
    });
    // A span or dispatcher clone kept by the plugin past this call must not
    // reach the borrowed host any more.
    if let Ok(mut guard) = shared.lock() {
        guard.0 = std::ptr::null();
    }
    match outcome {
        Ok(Ok(result)) => {
            set_result(host, &result);
            RC_OK
        }
        Ok(Err(error)) => {
            let json = serde_json::to_vec(&error).unwrap_or_else(|_| b"{}".to_vec());
            set_result(host, &json);
            RC_PLUGIN_ERROR
        }
        Err(payload) => {
            let message = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_owned()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "panic with a non-string payload".to_owned()
            };
            set_result(host, message.as_bytes());
            RC_PANIC
        }
    }
}

fn set_result(host: &HostApi, bytes: &[u8]) {
    (host.set_result)(host.ctx, bytes.as_ptr(), bytes.len());
}

/// The borrowed host table, cleared (null) once the call returns.
struct HostPtr(*const HostApi);

// SAFETY: the pointer is only dereferenced under the mutex while the call that
// lent it is still running (it is nulled before the call returns), and the
// host's callbacks accept calls from any thread.
unsafe impl Send for HostPtr {}

/// A minimal `tracing` subscriber, the thread default during one call, that
/// forwards every event to the host's `log` callback. Spans are not tracked.
struct LogBridge {
    host: Arc<Mutex<HostPtr>>,
}

impl Subscriber for LogBridge {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => LOG_ERROR,
            Level::WARN => LOG_WARN,
            Level::INFO => LOG_INFO,
            Level::DEBUG => LOG_DEBUG,
            Level::TRACE => LOG_TRACE,
        };
        let mut text = MessageText::default();
        event.record(&mut text);
        let target = meta.target();
        let Ok(guard) = self.host.lock() else {
            return;
        };
        if guard.0.is_null() {
            return;
        }
        // SAFETY: not null, so the call that lent the table is still running
        // (it nulls the pointer under this lock before returning).
        let host = unsafe { &*guard.0 };
        (host.log)(
            host.ctx,
            level,
            target.as_ptr(),
            target.len(),
            text.0.as_ptr(),
            text.0.len(),
        );
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The event's `message` first, then `key=value` for the other fields.
#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}
