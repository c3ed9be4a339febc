//! The HTTP surface: the device endpoint, package downloads, the admin fault
//! switch and the read-only views.

mod admin;
mod dispatch;
pub mod download;
mod handlers;
pub mod range;
pub mod received;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use crate::catalog::CatalogHandle;
use crate::config::ServerConfig;
use crate::faults::FaultHandle;
use crate::state::{State, StateError};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The catalog in force.
    pub catalog: CatalogHandle,
    /// The state store.
    pub state: Arc<State>,
    /// Injected faults.
    pub faults: FaultHandle,
    /// The configuration.
    pub config: Arc<ServerConfig>,
    /// Base URL for the server's own download links (no trailing `/`).
    pub base_url: String,
    /// Package bytes sent so far (tests and benchmarks measure refetching).
    pub bytes_served: Arc<std::sync::atomic::AtomicU64>,
    /// Device request bodies by message kind.
    pub received: Arc<received::Received>,
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig, endpoint: &str) {
    cfg.service(web::resource(endpoint).route(web::post().to(dispatch::device_endpoint)))
        .service(
            web::resource("/packages/{id}/{file}")
                .route(web::get().to(download::download))
                .route(web::head().to(download::download)),
        )
        .service(
            web::resource("/admin/faults")
                .route(web::get().to(admin::get_faults))
                .route(web::put().to(admin::set_faults))
                .route(web::post().to(admin::set_faults))
                .route(web::delete().to(admin::clear_faults)),
        )
        .service(web::resource("/admin/reload").route(web::post().to(admin::reload)))
        .service(web::resource("/admin/received").route(web::get().to(admin::get_received)))
        .service(web::resource("/healthz").route(web::get().to(healthz)));
    crate::views::configure(cfg);
}

/// `GET /healthz`: 200 `ok` when the state store answers, else 503 with
/// the reason; what a load balancer in front of replicas checks.
async fn healthz(app: web::Data<AppState>) -> HttpResponse {
    let state = app.state.clone();
    match web::block(move || state.check()).await {
        Ok(Ok(())) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ok\n"),
        Ok(Err(e)) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(format!("{e}\n")),
        Err(e) => HttpResponse::InternalServerError().body(format!("{e}\n")),
    }
}

/// A refused request: status and a plain-text message.
#[derive(Debug)]
pub struct Reject {
    /// The HTTP status.
    pub status: StatusCode,
    /// What was wrong.
    pub message: String,
}

impl Reject {
    /// A refusal with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Reject {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The response.
    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type("text/plain; charset=utf-8")
            .body(format!("{}\n", self.message))
    }
}

impl From<StateError> for Reject {
    fn from(e: StateError) -> Self {
        tracing::error!(error = %e, "state failure");
        Reject::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// Applies the delay and 503 faults; `Some` is the response to send instead.
pub async fn apply_request_faults(app: &AppState) -> Option<HttpResponse> {
    let (delay, unavailable) = app.faults.on_request();
    if let Some(d) = delay {
        actix_web::rt::time::sleep(d).await;
    }
    unavailable.map(|secs| {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", secs.to_string()))
            .content_type("text/plain; charset=utf-8")
            .body("fault injection: come back later\n")
    })
}

/// Percent-encodes one URL path segment (everything but RFC 3986 unreserved).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
