//! `/admin/faults` (GET, PUT/POST a JSON `Faults`, DELETE) and
//! `/admin/reload` (POST): loopback peers only.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{AppState, Reject};
use crate::faults::Faults;

fn loopback_only(req: &HttpRequest) -> Result<(), Reject> {
    match req.peer_addr() {
        Some(a) if a.ip().is_loopback() => Ok(()),
        _ => Err(Reject::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "the admin interface answers loopback peers only",
        )),
    }
}

pub(super) async fn get_faults(req: HttpRequest, app: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = loopback_only(&req) {
        return r.response();
    }
    HttpResponse::Ok().json(app.faults.get())
}

/// `GET /admin/received`: what devices sent, by message kind, and how many
/// polls read their device record from the database.
pub(super) async fn get_received(req: HttpRequest, app: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = loopback_only(&req) {
        return r.response();
    }
    HttpResponse::Ok().json(serde_json::json!({
        "by_kind": app.received.snapshot(),
        "duplicate_statuses": app.received.duplicate_statuses(),
        "polls_from_database": app.received.polls_from_database(),
    }))
}

pub(super) async fn set_faults(
    req: HttpRequest,
    body: web::Bytes,
    app: web::Data<AppState>,
) -> HttpResponse {
    if let Err(r) = loopback_only(&req) {
        return r.response();
    }
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            tracing::warn!(faults = ?f, "fault injection set");
            app.faults.set(f.clone());
            HttpResponse::Ok().json(f)
        }
        Err(e) => Reject::bad(format!("bad faults document: {e}")).response(),
    }
}

pub(super) async fn clear_faults(req: HttpRequest, app: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = loopback_only(&req) {
        return r.response();
    }
    app.faults.set(Faults::default());
    HttpResponse::Ok().json(Faults::default())
}

pub(super) async fn reload(req: HttpRequest, app: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = loopback_only(&req) {
        return r.response();
    }
    let catalog = app.catalog.clone();
    match web::block(move || catalog.reload()).await {
        Ok(Ok(())) => HttpResponse::Ok().body("catalog reloaded\n"),
        Ok(Err(e)) => Reject::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("catalog not reloaded, previous catalog stays in force: {e}"),
        )
        .response(),
        Err(e) => Reject::new(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )
        .response(),
    }
}
