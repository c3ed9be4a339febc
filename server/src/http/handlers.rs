//! One handler per message kind. The XML handlers are synchronous (decode,
//! catalog, redb) and run on a blocking thread; file collection streams.

use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use dmagent::protocol::envelope::{HEADER_AUTH, HEADER_TIMESTAMP};
use dmagent::protocol::{
    percent_decode_filename, root_element_name_with, Action, DevicePoll, Document, FileReport,
    Instructions, InstructionsRequest, Inventory, Limits, PackageLocation, PackageLocationRequest,
    ReportType, Status,
};
use sha2::{Digest, Sha256};

use super::dispatch::RequestCtx;
use super::{encode_segment, AppState, Reject};
use crate::catalog::{DeviceFacts, Package};
use crate::state::{stored_relative_path, DeviceRecord, FileRecord, InventoryRecord};
use crate::time::now_rfc3339;

/// A response built off the async thread.
#[derive(Debug, Default)]
pub(super) struct Reply {
    status: u16,
    body: Bytes,
    xml: bool,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn xml(body: impl Into<Bytes>) -> Self {
        Reply {
            status: 200,
            body: body.into(),
            xml: true,
            headers: Vec::new(),
        }
    }

    fn empty() -> Self {
        Reply {
            status: 200,
            ..Reply::default()
        }
    }

    fn header(mut self, name: &'static str, value: Option<String>) -> Self {
        if let Some(v) = value {
            self.headers.push((name, v));
        }
        self
    }

    pub(super) fn into_response(self) -> HttpResponse {
        let mut r =
            HttpResponse::build(StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK));
        for (n, v) in self.headers {
            r.insert_header((n, v));
        }
        if self.xml {
            r.content_type(dmagent::protocol::envelope::CONTENT_TYPE_XML);
        }
        r.body(self.body)
    }
}

fn limits(app: &AppState) -> Limits {
    Limits {
        max_size: usize::try_from(app.config.max_xml_body).unwrap_or(usize::MAX),
        ..Limits::default()
    }
}

fn decode<D: Document>(app: &AppState, body: &[u8]) -> Result<D, Reject> {
    D::decode_with(body, &limits(app))
        .map_err(|e| Reject::bad(format!("malformed {}: {e}", D::ROOT)))
}

/// The device ID from `X-Device-UUID` (or, for a poll, `Identification/ID`).
fn device_id(ctx: &RequestCtx, poll: Option<&DevicePoll>) -> Result<String, Reject> {
    let id = match ctx.headers.uuid.trim() {
        "" => poll.map(|p| p.identification.id.trim()).unwrap_or(""),
        id => id,
    };
    if id.is_empty() {
        return Err(Reject::bad("X-Device-UUID is missing"));
    }
    if id.len() > 256 || id.chars().any(char::is_control) {
        return Err(Reject::bad(
            "X-Device-UUID is longer than 256 characters or holds control characters",
        ));
    }
    Ok(id.to_owned())
}

/// Checks `X-Device-Auth` when auth is on; returns the token to echo.
fn authorize(
    app: &AppState,
    ctx: &RequestCtx,
    record: Option<&DeviceRecord>,
    poll: bool,
    body_token: Option<&str>,
) -> Result<Option<String>, Reject> {
    let sent = sent_token(ctx, body_token);
    if !app.config.auth {
        return Ok((!sent.is_empty()).then(|| sent.to_owned()));
    }
    match record.and_then(|r| r.auth_token.as_deref()) {
        None if poll => Ok(None),
        // Enrolled, but the device never showed the token: the reply that
        // carried it was lost (a replica died after committing it, the
        // link dropped). Enrolment is idempotent: the same token again.
        Some(t) if poll && sent.is_empty() && record.is_some_and(|r| !r.token_presented) => {
            Ok(Some(t.to_owned()))
        }
        None => Err(Reject::new(
            StatusCode::UNAUTHORIZED,
            "this device is not enrolled: poll first",
        )),
        Some(t) if t == sent => Ok(Some(t.to_owned())),
        Some(_) => Err(Reject::new(
            StatusCode::UNAUTHORIZED,
            "X-Device-Auth does not match this device's token",
        )),
    }
}

/// The token a request carries: `X-Device-Auth`, else the poll body's
/// `AuthorizationToken`; empty when neither.
fn sent_token<'a>(ctx: &'a RequestCtx, body_token: Option<&'a str>) -> &'a str {
    match ctx.headers.auth.trim() {
        "" => body_token.map(str::trim).unwrap_or(""),
        s => s,
    }
}

fn facts(rec: &DeviceRecord) -> DeviceFacts<'_> {
    DeviceFacts {
        id: &rec.id,
        name: rec.name(),
        platform: rec.platform(),
    }
}

/// Every XML message: picks the kind and runs its handler.
pub(super) fn handle_xml(app: &AppState, ctx: &RequestCtx, body: &[u8]) -> Result<Reply, Reject> {
    let action = match ctx.header_action() {
        Ok(Some(a)) => a,
        other => {
            let root = root_element_name_with(body, &limits(app))
                .map_err(|e| Reject::bad(format!("malformed document: {e}")))?;
            match Action::from_root_element(&root) {
                Some(a) => a,
                None => {
                    let why = match other {
                        Err(e) => e,
                        _ => "X-Device-Action is missing".to_owned(),
                    };
                    return Err(Reject::bad(format!(
                        "cannot tell the message kind: {why}, and the root element <{root}> is not a device message"
                    )));
                }
            }
        }
    };
    match action {
        Action::Poll => poll(app, ctx, body),
        Action::InstructionRequest => instructions(app, ctx, body),
        Action::LocationRequest => location(app, ctx, body),
        Action::Status => status(app, ctx, body),
        Action::Report(ReportType::SoftwareInventory) => {
            let doc: FileReport = decode(app, body)?;
            inventory(app, ctx, "software", serde_json::to_value(doc))
        }
        Action::Report(ReportType::MachineInventory) => {
            let doc: Inventory = decode(app, body)?;
            inventory(app, ctx, "machine", serde_json::to_value(doc))
        }
        Action::Report(ReportType::FileCollection) => Err(Reject::bad(
            "a file collection report must carry X-Device-Action: Report and X-Device-ReportType: FileCollection",
        )),
    }
}

/// Why a poll could not be answered (yet).
enum PollStop {
    /// Refused.
    Reject(Reject),
    /// Needs the disk (the device record is not in memory, or a new token
    /// must be committed): finish on a blocking thread.
    Blocking,
}

impl From<Reject> for PollStop {
    fn from(r: Reject) -> Self {
        PollStop::Reject(r)
    }
}

impl From<crate::state::StateError> for PollStop {
    fn from(e: crate::state::StateError) -> Self {
        PollStop::Reject(e.into())
    }
}

/// What became of a poll tried on the async thread.
pub(super) enum PollInline {
    /// Answered or refused.
    Done(Result<Reply, Reject>),
    /// Finish it with [`poll_blocking`] on a blocking thread.
    Blocking(Box<DevicePoll>),
}

/// Poll bodies up to this size are decoded on the async thread (a few
/// microseconds); larger ones go to a blocking thread whole.
pub(super) const INLINE_POLL_MAX: usize = 16 * 1024;

/// Answers a poll without touching the disk, if the device's record is in
/// memory (it polled within the last flush interval or two).
pub(super) fn poll_inline(app: &AppState, ctx: &RequestCtx, body: &[u8]) -> PollInline {
    let mut doc = match decode::<DevicePoll>(app, body) {
        Ok(d) => Some(d),
        Err(e) => return PollInline::Done(Err(e)),
    };
    match poll_with(app, ctx, &mut doc, false) {
        Ok(r) => PollInline::Done(Ok(r)),
        Err(PollStop::Reject(r)) => PollInline::Done(Err(r)),
        Err(PollStop::Blocking) => match doc {
            Some(d) => PollInline::Blocking(Box::new(d)),
            None => PollInline::Done(Err(Reject::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the poll was lost between its two halves",
            ))),
        },
    }
}

/// Answers a decoded poll, reading and committing as needed.
pub(super) fn poll_blocking(
    app: &AppState,
    ctx: &RequestCtx,
    doc: DevicePoll,
) -> Result<Reply, Reject> {
    match poll_with(app, ctx, &mut Some(doc), true) {
        Ok(r) => Ok(r),
        Err(PollStop::Reject(r)) => Err(r),
        Err(PollStop::Blocking) => Err(Reject::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "a blocking poll asked to block",
        )),
    }
}

fn poll(app: &AppState, ctx: &RequestCtx, body: &[u8]) -> Result<Reply, Reject> {
    poll_blocking(app, ctx, decode(app, body)?)
}

/// Updates the device record from the poll in `doc` (taken only when the
/// update is made) and answers it. With `may_block` false, stops with
/// [`PollStop::Blocking`] instead of reading or committing.
fn poll_with(
    app: &AppState,
    ctx: &RequestCtx,
    doc: &mut Option<DevicePoll>,
    may_block: bool,
) -> Result<Reply, PollStop> {
    let plan = PollPlan::new(app, ctx, doc.as_ref(), may_block)?;
    let check = |before: &DeviceRecord| {
        let update = plan.check(before)?;
        Ok(move |r: &mut DeviceRecord| update.apply(r, doc.take()))
    };
    let polled = if may_block {
        app.state.try_update_device(&plan.id, check)?
    } else {
        app.state
            .try_update_pending(&plan.id, check)
            .unwrap_or(Err(PollStop::Blocking))?
    };
    if polled.enrolled {
        // A token the device holds must survive a crash: commit it now.
        app.state.flush()?;
    }
    Ok(plan.reply(polled))
}

/// [`poll_blocking`] awaited on the async thread: the PostgreSQL backend's
/// statements are awaited where the request is, without a blocking thread.
pub(super) async fn poll_postgres(
    app: &AppState,
    pg: &crate::state::PostgresState,
    ctx: &RequestCtx,
    doc: DevicePoll,
) -> Result<Reply, Reject> {
    let stop = |s: PollStop| match s {
        PollStop::Reject(r) => r,
        PollStop::Blocking => Reject::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "an awaited poll asked to block",
        ),
    };
    let plan = PollPlan::new(app, ctx, Some(&doc), true).map_err(stop)?;
    let mut doc = Some(doc);
    let polled = pg
        .try_update_device_async(&plan.id, |before: &DeviceRecord| {
            let update = plan.check(before)?;
            Ok(move |r: &mut DeviceRecord| update.apply(r, doc.take()))
        })
        .await
        .map_err(stop)?;
    Ok(plan.reply(polled))
}

/// What a poll knows before it sees the device record.
struct PollPlan<'a> {
    app: &'a AppState,
    ctx: &'a RequestCtx,
    id: String,
    body_token: Option<String>,
    issued: String,
    may_block: bool,
    /// The reply's body: the catalog's answer for the name and platform of
    /// this poll's document, which the update stores as the record's.
    body: Bytes,
}

/// The change a poll makes to the device record, once authorised.
struct PollUpdate<'a> {
    plan: &'a PollPlan<'a>,
    echo: Option<String>,
    enrol: bool,
    presented: bool,
}

impl<'a> PollPlan<'a> {
    fn new(
        app: &'a AppState,
        ctx: &'a RequestCtx,
        doc: Option<&DevicePoll>,
        may_block: bool,
    ) -> Result<Self, PollStop> {
        let id = device_id(ctx, doc)?;
        let ident = doc.map(|d| &d.identification);
        let body = app.catalog.get().poll_response(&DeviceFacts {
            id: &id,
            name: ident.and_then(|i| i.device_name.as_deref()),
            platform: ident.and_then(|i| i.platform.as_deref()),
        });
        Ok(PollPlan {
            app,
            ctx,
            id,
            body_token: doc
                .and_then(|d| d.connection.as_ref())
                .and_then(|c| c.authorization_token.clone()),
            issued: now_rfc3339(),
            may_block,
            body,
        })
    }

    /// Authorises the poll against the record as it is.
    fn check(&self, before: &DeviceRecord) -> Result<PollUpdate<'_>, PollStop> {
        let (app, ctx) = (self.app, self.ctx);
        let echo = authorize(app, ctx, Some(before), true, self.body_token.as_deref())?;
        let enrol = app.config.auth && echo.is_none();
        let presented = echo.is_some() && !sent_token(ctx, self.body_token.as_deref()).is_empty();
        if enrol && !self.may_block {
            return Err(PollStop::Blocking);
        }
        Ok(PollUpdate {
            plan: self,
            echo,
            enrol,
            presented,
        })
    }

    /// The poll response, the record updated.
    fn reply(self, polled: Polled) -> Reply {
        Reply::xml(self.body)
            .header(HEADER_TIMESTAMP, Some(self.issued))
            .header(HEADER_AUTH, polled.token)
    }
}

impl PollUpdate<'_> {
    fn apply(self, r: &mut DeviceRecord, doc: Option<DevicePoll>) -> Polled {
        let PollPlan {
            app, ctx, issued, ..
        } = self.plan;
        if r.first_seen.is_empty() {
            r.first_seen.clone_from(issued);
        }
        // clone_from, field by field: a record polled before keeps its
        // strings' buffers (a derived `clone_from` would allocate anew).
        r.last_seen.clone_from(issued);
        r.poll = doc;
        let (h, sent) = (&mut r.headers, &ctx.headers);
        h.uuid.clone_from(&sent.uuid);
        h.auth.clone_from(&sent.auth);
        h.timestamp.clone_from(&sent.timestamp);
        h.client_version.clone_from(&sent.client_version);
        r.action_header.clear();
        r.action_header
            .push_str(ctx.action_header.as_deref().unwrap_or_default());
        r.user_agent.clone_from(&ctx.user_agent);
        r.remote_addr.clone_from(&ctx.remote_addr);
        r.poll_count += 1;
        match &mut r.issued_timestamp {
            Some(t) => t.clone_from(issued),
            None => r.issued_timestamp = Some(issued.clone()),
        }
        if self.enrol {
            r.auth_token = Some(uuid::Uuid::new_v4().to_string());
            r.token_presented = false;
        }
        r.token_presented |= self.presented;
        Polled {
            token: if app.config.auth {
                r.auth_token.clone()
            } else {
                self.echo
            },
            enrolled: self.enrol,
        }
    }
}

/// What a poll needs of the device record after updating it.
struct Polled {
    token: Option<String>,
    enrolled: bool,
}

/// The device record (or a bare one for a device that never polled), after
/// the auth check, and the token to echo.
fn known_device(
    app: &AppState,
    ctx: &RequestCtx,
) -> Result<(DeviceRecord, Option<String>), Reject> {
    let id = device_id(ctx, None)?;
    let rec = app.state.device(&id)?;
    let echo = authorize(app, ctx, rec.as_ref(), false, None)?;
    let rec = rec.unwrap_or(DeviceRecord {
        id,
        ..DeviceRecord::default()
    });
    Ok((rec, echo))
}

fn assigned(app: &AppState, rec: &DeviceRecord, package_id: &str) -> Result<Package, Reject> {
    app.catalog
        .get()
        .assigned(&facts(rec), package_id)
        .cloned()
        .ok_or_else(|| {
            Reject::new(
                StatusCode::NOT_FOUND,
                format!("package {package_id:?} is unknown or not assigned to this device"),
            )
        })
}

fn instructions(app: &AppState, ctx: &RequestCtx, body: &[u8]) -> Result<Reply, Reject> {
    let doc: InstructionsRequest = decode(app, body)?;
    let (rec, echo) = known_device(app, ctx)?;
    let pkg = assigned(app, &rec, &doc.package_id)?;
    let mut served = pkg.instructions.clone();
    if let Some(signer) = &app.config.signer {
        served = signer.sign(served);
    }
    if let Some(command) = app.faults.tampered_command(pkg.id()) {
        served.command_line = Some(command);
    }
    let resp = Instructions {
        packages: vec![served],
    };
    Ok(Reply::xml(resp.encode()).header(HEADER_AUTH, echo))
}

/// The URL a device downloads `pkg` from.
pub(crate) fn package_url(app: &AppState, pkg: &Package) -> String {
    if let Some(u) = app.faults.relocated(pkg.id()) {
        return u;
    }
    match &pkg.external_base_url {
        Some(base) => format!("{base}/{}", encode_segment(&pkg.file_name)),
        None => format!(
            "{}/packages/{}/{}",
            app.base_url,
            encode_segment(pkg.id()),
            encode_segment(&pkg.file_name)
        ),
    }
}

fn location(app: &AppState, ctx: &RequestCtx, body: &[u8]) -> Result<Reply, Reject> {
    let doc: PackageLocationRequest = decode(app, body)?;
    let (rec, echo) = known_device(app, ctx)?;
    let pkg = assigned(app, &rec, &doc.package_id)?;
    let resp = PackageLocation {
        package_id: pkg.id().to_owned(),
        locations: vec![dmagent::protocol::Location {
            metric: Some(1),
            http_url: Some(package_url(app, &pkg)),
            ..Default::default()
        }],
    };
    Ok(Reply::xml(resp.encode()).header(HEADER_AUTH, echo))
}

fn status(app: &AppState, ctx: &RequestCtx, body: &[u8]) -> Result<Reply, Reject> {
    let doc: Status = decode(app, body)?;
    let (rec, echo) = known_device(app, ctx)?;
    if let Some(m) = doc
        .messages
        .iter()
        .find(|m| app.faults.refuses_status_of(&m.package_id))
    {
        return Err(Reject::bad(format!(
            "fault injection: status messages about {} are refused",
            m.package_id
        )));
    }
    let out = app
        .state
        .add_status(&rec.id, &doc.messages, &now_rfc3339())?;
    tracing::info!(device = %rec.id, stored = out.stored, duplicates = out.duplicates, "status");
    app.received.add_duplicate_statuses(out.duplicates);
    Ok(Reply::empty().header(HEADER_AUTH, echo))
}

fn inventory(
    app: &AppState,
    ctx: &RequestCtx,
    kind: &str,
    doc: Result<serde_json::Value, serde_json::Error>,
) -> Result<Reply, Reject> {
    let (rec, echo) = known_device(app, ctx)?;
    let document =
        doc.map_err(|e| Reject::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    app.state.put_inventory(
        &rec.id,
        &InventoryRecord {
            kind: kind.to_owned(),
            received_at: now_rfc3339(),
            document,
        },
    )?;
    Ok(Reply::empty().header(HEADER_AUTH, echo))
}

/// A file collection report: the raw body streamed to a temporary file
/// (hashing as it goes, capped), then renamed into place and recorded.
pub(super) async fn file_collection(
    app: &web::Data<AppState>,
    ctx: &RequestCtx,
    mut payload: web::Payload,
) -> Result<Reply, Reject> {
    let raw = ctx
        .filename_header
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Reject::bad("X-Device-FullyQualifiedFilename is missing"))?;
    let original = percent_decode_filename(raw)
        .map_err(|e| Reject::bad(format!("X-Device-FullyQualifiedFilename: {e}")))?;
    let (rec, echo) = {
        let app = app.clone();
        let ctx = ctx.clone();
        blocking(move || known_device(&app, &ctx)).await??
    };
    let rel = stored_relative_path(&rec.id, &original)
        .map_err(|e| Reject::bad(format!("X-Device-FullyQualifiedFilename: {e}")))?;
    let cap = app.config.max_file_body;
    let too_large = || {
        Reject::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the file exceeds the limit of {cap} bytes"),
        )
    };
    if ctx.content_length.is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let state_dir = app.state.dir().to_owned();
    let tmp = state_dir.join("files").join(format!(
        "{}{}",
        crate::state::INCOMING_PREFIX,
        uuid::Uuid::new_v4()
    ));
    let file = {
        let tmp = tmp.clone();
        blocking(move || std::fs::File::create(tmp))
            .await?
            .map_err(internal)?
    };
    let (file, size, sha256) = match receive(&mut payload, file, cap).await {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let app2 = app.clone();
    let record = FileRecord {
        original_path: original,
        stored_path: rel.clone(),
        size,
        sha256,
        received_at: now_rfc3339(),
    };
    let device = rec.id.clone();
    blocking(move || -> Result<(), Reject> {
        if let Err(e) = file.sync_all() {
            let _ = std::fs::remove_file(&tmp);
            return Err(internal(e));
        }
        drop(file);
        let dest: PathBuf = state_dir.join(&rel);
        let placed = (|| {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::rename(&tmp, &dest)
        })();
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(Reject::new(
                StatusCode::CONFLICT,
                format!("cannot store the file as {rel}: {e}"),
            ));
        }
        app2.state.put_file(&device, &record)?;
        Ok(())
    })
    .await??;
    Ok(Reply::empty().header(HEADER_AUTH, echo))
}

/// Streams the body into `file`, hashing; `(file, size, sha256)`, the file
/// not yet synced (that blocks: the caller does it on a blocking thread).
async fn receive(
    payload: &mut web::Payload,
    mut file: std::fs::File,
    cap: u64,
) -> Result<(std::fs::File, u64, String), Reject> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let next =
            std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *payload), cx))
                .await;
        let chunk = match next {
            None => break,
            Some(Err(e)) => return Err(Reject::bad(format!("cannot read the body: {e}"))),
            Some(Ok(c)) => c,
        };
        size += chunk.len() as u64;
        if size > cap {
            return Err(Reject::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the file exceeds the limit of {cap} bytes"),
            ));
        }
        let (f, h) = blocking(move || {
            file.write_all(&chunk)?;
            hasher.update(&chunk);
            Ok::<_, std::io::Error>((file, hasher))
        })
        .await?
        .map_err(internal)?;
        file = f;
        hasher = h;
    }
    Ok((file, size, crate::catalog::hex(&hasher.finalize())))
}

/// Runs `f` on a blocking thread; a thread that failed is a 500.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Reject> {
    web::block(f)
        .await
        .map_err(|e| Reject::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn internal(e: std::io::Error) -> Reject {
    Reject::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}
