//! The one device endpoint: reads the envelope, picks the message kind
//! (`X-Device-Action` / `X-Device-ReportType`, else the root element), caps
//! the body and hands it to the handler of that kind.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use dmagent::protocol::envelope::{
    HEADER_ACTION, HEADER_AUTH, HEADER_FULLY_QUALIFIED_FILENAME, HEADER_REPORT_TYPE,
};
use dmagent::protocol::{Action, DeviceHeaders, ReportType};

use super::handlers::{self, Reply};
use super::{apply_request_faults, AppState, Reject};

/// The request facts the handlers need (owned: they run on a blocking thread).
#[derive(Debug, Clone, Default)]
pub(super) struct RequestCtx {
    pub headers: DeviceHeaders,
    /// `X-Device-Action` as sent (None if absent).
    pub action_header: Option<String>,
    /// `X-Device-ReportType` as sent.
    pub report_type_header: Option<String>,
    /// `X-Device-FullyQualifiedFilename` as sent.
    pub filename_header: Option<String>,
    pub user_agent: Option<String>,
    pub remote_addr: Option<String>,
    pub content_length: Option<u64>,
}

impl RequestCtx {
    fn from_request(req: &HttpRequest) -> Self {
        let get = |n: &str| {
            req.headers()
                .get(n)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        RequestCtx {
            headers: DeviceHeaders::from_lookup(|n| {
                req.headers().get(n).and_then(|v| v.to_str().ok())
            }),
            action_header: get(HEADER_ACTION),
            report_type_header: get(HEADER_REPORT_TYPE),
            filename_header: get(HEADER_FULLY_QUALIFIED_FILENAME),
            user_agent: get(header::USER_AGENT.as_str()),
            remote_addr: req.peer_addr().map(|a| a.to_string()),
            content_length: req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok()),
        }
    }

    /// The message kind named by the headers: `Ok(None)` when
    /// `X-Device-Action` is missing or empty, `Err` when it is unusable (the
    /// caller then falls back to the root element).
    pub fn header_action(&self) -> Result<Option<Action>, String> {
        match self.action_header.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(a) => Action::from_headers(a, self.report_type_header.as_deref())
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }
}

pub(super) async fn device_endpoint(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
) -> HttpResponse {
    if let Some(r) = apply_request_faults(&app).await {
        return r;
    }
    let ctx = RequestCtx::from_request(&req);
    let result = match ctx.header_action() {
        Ok(Some(action @ Action::Report(ReportType::FileCollection))) => {
            app.received
                .add(Some(action), ctx.content_length.unwrap_or(0));
            handlers::file_collection(&app, &ctx, payload).await
        }
        _ => xml_message(&app, ctx, payload).await,
    };
    if result.is_ok() && app.faults.abort_after_store() {
        tracing::error!("fault injection: aborting after the store, before the reply");
        std::process::abort();
    }
    match result {
        Ok(reply) => reply.into_response(),
        Err(reject) => {
            if reject.status.is_server_error() {
                tracing::error!(status = %reject.status, message = %reject.message, "device request failed");
            } else {
                tracing::info!(status = %reject.status, message = %reject.message, "device request refused");
            }
            let mut r = reject.response();
            if reject.status == StatusCode::UNAUTHORIZED {
                r.headers_mut().remove(HEADER_AUTH);
            }
            r
        }
    }
}

async fn xml_message(
    app: &web::Data<AppState>,
    ctx: RequestCtx,
    payload: web::Payload,
) -> Result<Reply, Reject> {
    let cap = app.config.max_xml_body;
    let too_large = || {
        Reject::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the XML body exceeds the limit of {cap} bytes"),
        )
    };
    if ctx.content_length.is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let body = match payload
        .to_bytes_limited(usize::try_from(cap).unwrap_or(usize::MAX))
        .await
    {
        Err(_) => return Err(too_large()),
        Ok(Err(e)) => return Err(Reject::bad(format!("cannot read the request body: {e}"))),
        Ok(Ok(b)) => b,
    };
    app.received
        .add(ctx.header_action().ok().flatten(), body.len() as u64);
    if body.len() <= handlers::INLINE_POLL_MAX
        && matches!(ctx.header_action(), Ok(Some(Action::Poll)))
    {
        // Most polls need no disk: answered here, without a thread hop.
        let doc = match handlers::poll_inline(app, &ctx, &body) {
            handlers::PollInline::Done(r) => return r,
            handlers::PollInline::Blocking(doc) => doc,
        };
        app.received.add_poll_from_database();
        if let crate::state::State::Postgres(pg) = &*app.state {
            // Awaited here: a blocking thread would only block on the
            // client's runtime.
            return handlers::poll_postgres(app, pg, &ctx, *doc).await;
        }
        let app = app.clone();
        return match web::block(move || handlers::poll_blocking(&app, &ctx, *doc)).await {
            Ok(r) => r,
            Err(e) => Err(Reject::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("handler failed: {e}"),
            )),
        };
    }
    let app = app.clone();
    match web::block(move || handlers::handle_xml(&app, &ctx, &body)).await {
        Ok(r) => r,
        Err(e) => Err(Reject::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("handler failed: {e}"),
        )),
    }
}
