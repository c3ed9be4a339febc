//! Read-only views: HTML at `/` and `/devices/{id}`, the same data as JSON
//! at `/api/devices` and `/api/devices/{id}`.

mod html;
mod model;

use actix_web::{web, HttpResponse};

use crate::http::AppState;
pub use model::{package_state_label, DeviceDetail, DeviceSummary, PackageState};

/// Registers the view routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(index)))
        .service(web::resource("/devices/{id}").route(web::get().to(device)))
        .service(web::resource("/api/devices").route(web::get().to(api_devices)))
        .service(web::resource("/api/devices/{id}").route(web::get().to(api_device)));
}

fn internal(e: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::InternalServerError()
        .content_type("text/plain; charset=utf-8")
        .body(format!("{e}\n"))
}

fn not_found(id: &str) -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body(format!("no device {id:?}\n"))
}

async fn summaries(app: &web::Data<AppState>) -> Result<Vec<DeviceSummary>, String> {
    let app = app.clone();
    web::block(move || model::summaries(&app))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

async fn detail(app: &web::Data<AppState>, id: String) -> Result<Option<DeviceDetail>, String> {
    let app = app.clone();
    web::block(move || model::detail(&app, &id))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

async fn index(app: web::Data<AppState>) -> HttpResponse {
    match summaries(&app).await {
        Ok(list) => {
            let err = app.catalog.last_error().map(|e| e.to_string());
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .body(html::index(&list, err.as_deref()))
        }
        Err(e) => internal(e),
    }
}

async fn device(app: web::Data<AppState>, id: web::Path<String>) -> HttpResponse {
    let id = id.into_inner();
    match detail(&app, id.clone()).await {
        Ok(Some(d)) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(html::device(&d)),
        Ok(None) => not_found(&id),
        Err(e) => internal(e),
    }
}

async fn api_devices(app: web::Data<AppState>) -> HttpResponse {
    match summaries(&app).await {
        Ok(list) => HttpResponse::Ok().json(list),
        Err(e) => internal(e),
    }
}

async fn api_device(app: web::Data<AppState>, id: web::Path<String>) -> HttpResponse {
    let id = id.into_inner();
    match detail(&app, id.clone()).await {
        Ok(Some(d)) => HttpResponse::Ok().json(d),
        Ok(None) => not_found(&id),
        Err(e) => internal(e),
    }
}
