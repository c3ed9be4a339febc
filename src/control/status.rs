//! The status report: what `dmagent status` shows, read from one consistent
//! snapshot of the client database and streamed to the control socket.

use serde::{Deserialize, Serialize};

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use super::Response;
use crate::daemon::store_actor::ControlContext;
use crate::protocol::{LinkFlags, RecurrenceBehavior};
use crate::scheduler::{explain, Links, Reachability, RetryPolicy, Wait};
use crate::store::{
    CheckpointRecord, HeldRead, OutboxItem, PackageRecord, PackageState, ServerValues, Snapshot,
    Store, StoreError, TaskId, TaskRecord,
};

/// Everything an operator needs to see at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The agent's version.
    pub agent_version: String,
    /// The device ID in use (absent if it cannot be resolved).
    pub device_id: Option<String>,
    /// The configured management server.
    pub server_url: String,
    /// Path of the database file.
    pub database: String,
    /// Whether a daemon answered (otherwise the CLI read the database itself).
    pub daemon_running: bool,
    /// When the report was made (Unix seconds).
    pub generated_unix: u64,
    /// The link classes up when the report was made.
    pub links: String,
    /// The image's signature policy and trusted keys (X8), in words.
    #[serde(default)]
    pub trust: String,
    /// The values the server issued.
    pub server: ServerStatus,
    // The fields below are last, in this order, for `StatusStream`'s head.
    /// Packages known to the device.
    pub packages: Vec<PackageStatus>,
    /// Scheduled tasks, earliest first.
    pub tasks: Vec<TaskStatus>,
    /// Undelivered status messages and reports, oldest first.
    pub outbox: Vec<OutboxStatus>,
    /// The last write to the client database that failed (disk full, I/O
    /// error), while none has committed since; the agent keeps retrying.
    #[serde(default)]
    pub database_error: Option<String>,
}

/// One package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageStatus {
    /// Package ID.
    pub id: String,
    /// Display name from the instructions.
    pub name: Option<String>,
    /// Mandatory or optional.
    pub required: bool,
    /// Whether an optional package was accepted locally.
    pub accepted: bool,
    /// State (`pending`, `downloading`, …).
    pub state: String,
    /// Bytes downloaded so far, from the checkpoint.
    pub bytes_done: Option<u64>,
    /// Expected size in bytes.
    pub bytes_total: Option<u64>,
    /// The last outcome, in words.
    pub last_outcome: Option<String>,
    /// What happens next, and why it waits when it waits.
    pub next_step: String,
}

/// One scheduled task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// Task ID (`poll`, `download:<id>`, `report:software`).
    pub id: String,
    /// When it is due (Unix seconds).
    pub next_due_unix: u64,
    /// Recurrence period, if recurring.
    pub period_secs: Option<u64>,
    /// Retries spent on the current occurrence.
    pub attempts: u32,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Why it is not running now (`None`: due and runnable).
    pub waiting: Option<String>,
}

/// One undelivered outbox item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxStatus {
    /// Delivery order.
    pub seq: u64,
    /// When it was queued (Unix seconds).
    pub queued_unix: u64,
    /// What it is, in words (`status 11031 for PKG`, `report MachineInventory`).
    pub summary: String,
    /// How often the server refused it for good (kept all the same).
    #[serde(default)]
    pub refused: u32,
}

/// The server-issued values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServerStatus {
    /// `X-Device-Timestamp` as last issued.
    pub timestamp: Option<String>,
    /// Whether an `X-Device-Auth` token is held (the token itself is not shown).
    pub auth_token_held: bool,
    /// `ClientSettings/@version` last applied.
    pub client_settings_version: Option<String>,
    /// Poll interval set by the server, if any.
    pub poll_interval_secs: Option<u64>,
    /// Poll server set by the server, if any.
    pub poll_server: Option<String>,
    /// Since when the server has not answered, if it does not.
    pub unreachable_since_unix: Option<u64>,
}

impl StatusReport {
    /// Writes the whole `status` response line to `out`, slice by slice as
    /// the daemon sends it (see [`StatusStream`]).
    pub fn write_response(
        store: &Store,
        context: &ControlContext,
        mut out: impl Write,
    ) -> io::Result<()> {
        let mut stream = StatusStream::begin(store, context);
        let mut chunk = Vec::new();
        loop {
            chunk.clear();
            let more = stream.next_slice(store, &mut chunk);
            out.write_all(&chunk)?;
            if !more {
                return out.flush();
            }
        }
    }

    /// The `status` response, streamed as the daemon streams it and read
    /// back: the CLI's answer when no daemon runs.
    pub fn respond(store: &Store, context: &ControlContext) -> Response {
        let mut line = Vec::new();
        if let Err(e) = Self::write_response(store, context, &mut line) {
            return Response::Error {
                message: e.to_string(),
            };
        }
        // `from_str`, as the client reads it: one decoder in the binary.
        let parsed = std::str::from_utf8(&line)
            .map_err(|e| e.to_string())
            .and_then(|line| serde_json::from_str::<Response>(line).map_err(|e| e.to_string()));
        match parsed {
            Ok(mut response) => {
                if let Response::Status(report) = &mut response {
                    report.sort();
                }
                response
            }
            Err(e) => Response::Error {
                message: format!("status report does not read back: {e}"),
            },
        }
    }

    /// Puts the tasks in due order, earliest first (ties by ID).
    pub fn sort(&mut self) {
        self.tasks
            .sort_by(|a, b| a.next_due_unix.cmp(&b.next_due_unix).then(a.id.cmp(&b.id)));
    }

    /// The report for a database that does not exist yet.
    pub fn empty(context: &ControlContext, now_unix: u64) -> StatusReport {
        Self::from_snapshot(&Snapshot::default(), context, now_unix, Links::OFFLINE)
    }

    /// Builds the report from a snapshot held whole (for tests and the
    /// fallback report).
    pub fn from_snapshot(
        snapshot: &Snapshot,
        context: &ControlContext,
        now: u64,
        links: Links,
    ) -> StatusReport {
        let values = &snapshot.server;
        let why = Why::new(context, values, now, links);
        let checkpoints: HashMap<&str, &CheckpointRecord> = snapshot
            .checkpoints
            .iter()
            .map(|c| (c.package_id.as_str(), c))
            .collect();
        let task_by_id: HashMap<&TaskId, &TaskRecord> =
            snapshot.tasks.iter().map(|t| (&t.id, t)).collect();
        let mut report = Self::head(context, values, now, links);
        report.packages = snapshot
            .packages
            .iter()
            .map(|p| {
                let checkpoint = checkpoints.get(p.id.as_str()).copied();
                let task = task_by_id.get(&TaskId::download(&p.id)).copied();
                why.package_status(p, checkpoint, task)
            })
            .collect();
        report.tasks = snapshot.tasks.iter().map(|t| why.task_status(t)).collect();
        report.outbox = snapshot.outbox.iter().map(outbox_status).collect();
        report.sort();
        report
    }

    /// Everything but the packages, tasks and outbox, which are left empty.
    fn head(
        context: &ControlContext,
        values: &ServerValues,
        now: u64,
        links: Links,
    ) -> StatusReport {
        let client = values.client_settings.as_ref();
        let configured = context.settings.server.url.as_deref();
        StatusReport {
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            device_id: context.device_id.clone(),
            server_url: crate::transport::effective_server_url(
                configured,
                client.and_then(|c| c.poll_server.as_deref()),
            )
            .unwrap_or_else(|| "(none configured)".to_owned()),
            database: context.settings.database_path().display().to_string(),
            daemon_running: context.daemon_running,
            generated_unix: now,
            links: links.to_string(),
            trust: crate::trust::describe(&context.settings.trust),
            packages: Vec::new(),
            tasks: Vec::new(),
            outbox: Vec::new(),
            server: ServerStatus {
                timestamp: values.timestamp.clone(),
                auth_token_held: values.auth_token.as_deref().is_some_and(|t| !t.is_empty()),
                client_settings_version: client.and_then(|c| c.version.clone()),
                poll_interval_secs: client.and_then(|c| c.poll_interval).map(|d| d.as_secs()),
                poll_server: client.and_then(|c| c.poll_server.clone()),
                unreachable_since_unix: values.unreachable_since,
            },
            database_error: None,
        }
    }
}

/// How the report with no entries ends (see the field order of
/// [`StatusReport`]); the stream writes the arrays in its place.
const HEAD_TAIL: &[u8] = br#"[],"tasks":[],"outbox":[],"database_error":null}"#;

/// A slice ends once it holds this much JSON.
pub const STATUS_SLICE_BYTES: usize = 64 * 1024;

/// The `status` response line (`{"result":"status",…}` and a newline), made
/// slice by slice from one read transaction held between the slices. Built
/// whole, the reply for 10,000 packages was 3.4 MB of JSON on top of every
/// record and entry, and the idle daemon's allocator kept the pages: one
/// `dmagent status` took its RSS from 5.2 to 12 MB. The daemon makes each
/// slice on its database thread (whose allocator arena is in use anyway) and
/// writes it to the socket at the client's pace in between, so a slow client
/// holds up nothing but its own reply.
///
/// Tasks come in ID order; [`StatusReport::sort`] puts them in due order,
/// which the client does on receipt. A database that cannot be read yields
/// the report with `database_error` set from a daemon and an `error`
/// response from the CLI. A read that fails after the first slice ends the
/// lists where they are and says so in `database_error`.
#[derive(Debug)]
pub struct StatusStream {
    step: Step,
}

#[derive(Debug)]
enum Step {
    /// The first slice: the whole answer when the database cannot be read.
    Failed(Box<Response>),
    Head(Box<Reading>),
    /// Inside `list`'s array, after the entry with key `after` (if any).
    List(Box<Reading>, List, Option<Key>),
    Done,
}

/// The arrays of the reply, in the order they are written (the order of
/// the fields of [`StatusReport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    Packages,
    Tasks,
    Outbox,
}

impl List {
    const ALL: [List; 3] = [List::Packages, List::Tasks, List::Outbox];

    fn name(self) -> &'static str {
        match self {
            List::Packages => "packages",
            List::Tasks => "tasks",
            List::Outbox => "outbox",
        }
    }

    /// The arrays after this one.
    fn rest(self) -> impl Iterator<Item = List> {
        List::ALL
            .into_iter()
            .skip_while(move |l| *l != self)
            .skip(1)
    }
}

/// Where a list's scan resumes: a package or task ID, or an outbox sequence.
#[derive(Debug)]
enum Key {
    Id(String),
    Seq(u64),
}

/// What the slices after the first are read with.
#[derive(Debug)]
struct Reading {
    held: HeldRead,
    why: Why,
    /// The `status` response with an entry-less report.
    head: Response,
}

impl StatusStream {
    /// Begins the read transaction the whole reply is read from.
    pub fn begin(store: &Store, context: &ControlContext) -> StatusStream {
        let links =
            crate::scheduler::links::probe(&context.settings.links, Path::new("/sys/class/net"));
        let now = context.clock.now_unix();
        let begun = store.hold_read().and_then(|held| {
            let values = held.view().server_values()?;
            Ok(Reading {
                why: Why::new(context, &values, now, links),
                head: Response::Status(Box::new(StatusReport::head(context, &values, now, links))),
                held,
            })
        });
        let step = match begun {
            Ok(reading) => Step::Head(Box::new(reading)),
            Err(e) if context.daemon_running => {
                // The daemon still answers while its database cannot be read
                // (a failed write it cannot reopen from yet).
                let mut report =
                    StatusReport::from_snapshot(&Snapshot::default(), context, now, links);
                report.database_error = Some(format!(
                    "cannot read the client database, retrying (packages not shown): {e}; last failed write: {}",
                    store.write_error().unwrap_or_else(|| "none".into())
                ));
                Step::Failed(Box::new(Response::Status(Box::new(report))))
            }
            Err(e) => Step::Failed(Box::new(Response::Error {
                message: e.to_string(),
            })),
        };
        StatusStream { step }
    }

    /// Appends the next slice, about [`STATUS_SLICE_BYTES`] of it, to `out`:
    /// `true` while more follows. Blocking (it reads the database). Every
    /// slice sequence ends in a whole line, whatever fails.
    pub fn next_slice(&mut self, store: &Store, out: &mut Vec<u8>) -> bool {
        loop {
            match std::mem::replace(&mut self.step, Step::Done) {
                Step::Done => return false,
                Step::Failed(response) => {
                    json(out, &*response);
                    out.push(b'\n');
                    return false;
                }
                Step::Head(reading) => {
                    // The head is the report with no entries, whose last
                    // fields are the empty arrays and the absent error: they
                    // are cut off and streamed in their place.
                    let start = out.len();
                    json(out, &reading.head);
                    if !out.ends_with(HEAD_TAIL) {
                        out.truncate(start);
                        json(
                            out,
                            &Response::Error {
                                message: "the status report's fields are out of order (a bug)"
                                    .into(),
                            },
                        );
                        out.push(b'\n');
                        return false;
                    }
                    out.truncate(out.len() - HEAD_TAIL.len());
                    out.push(b'[');
                    self.step = Step::List(reading, List::Packages, None);
                }
                Step::List(reading, list, after) => match reading.fill(list, after, out) {
                    Err(e) => {
                        cut_short(out, list, store, &e);
                        return false;
                    }
                    Ok(Some(last)) => {
                        self.step = Step::List(reading, list, Some(last));
                        if out.len() >= STATUS_SLICE_BYTES {
                            return true;
                        }
                    }
                    Ok(None) => match list.rest().next() {
                        Some(next) => {
                            out.extend_from_slice(format!(r#"],"{}":["#, next.name()).as_bytes());
                            self.step = Step::List(reading, next, None);
                        }
                        None => {
                            drop(reading);
                            out.extend_from_slice(br#"],"database_error":"#);
                            json(out, &store.write_error());
                            out.extend_from_slice(b"}\n");
                            return false;
                        }
                    },
                },
            }
        }
    }
}

impl Reading {
    /// Appends the entries of `list` after `after` until the slice is full
    /// or the list ends; the key of the last one appended (`None`: the list
    /// had no more).
    fn fill(
        &self,
        list: List,
        after: Option<Key>,
        out: &mut Vec<u8>,
    ) -> Result<Option<Key>, StoreError> {
        let rx = self.held.view();
        let mut first = after.is_none();
        let mut last = None;
        match list {
            List::Packages => rx.packages_after(id(&after), |p| {
                let checkpoint = rx.checkpoint(&p.id)?;
                let task = rx.task(TaskId::download(&p.id))?;
                let entry = self
                    .why
                    .package_status(&p, checkpoint.as_ref(), task.as_ref());
                last = Some(Key::Id(p.id));
                Ok(push(out, &mut first, &entry))
            })?,
            List::Tasks => rx.tasks_after(id(&after), |t| {
                last = Some(Key::Id(t.id.to_string()));
                Ok(push(out, &mut first, &self.why.task_status(&t)))
            })?,
            List::Outbox => {
                let seq = match after {
                    Some(Key::Seq(seq)) => Some(seq),
                    _ => None,
                };
                rx.outbox_after(seq.as_ref(), |item| {
                    last = Some(Key::Seq(item.seq));
                    Ok(push(out, &mut first, &outbox_status(&item)))
                })?
            }
        }
        Ok(last)
    }
}

/// The ID a package or task scan resumes after.
fn id(after: &Option<Key>) -> Option<&str> {
    match after {
        Some(Key::Id(id)) => Some(id),
        _ => None,
    }
}

/// Ends a reply whose read failed after its head was sent: closes `list`'s
/// array, writes the arrays after it empty, and says in `database_error`
/// that the lists are incomplete and why. (After a failed write redb refuses
/// every read of the handle it happened on until the store reopens it, and
/// a held read transaction is on that handle.)
fn cut_short(out: &mut Vec<u8>, list: List, store: &Store, e: &StoreError) {
    out.push(b']');
    for rest in list.rest() {
        out.extend_from_slice(format!(r#","{}":[]"#, rest.name()).as_bytes());
    }
    out.extend_from_slice(br#","database_error":"#);
    let message = format!(
        "the lists above are incomplete: reading the client database failed: {e}; last failed write: {}",
        store.write_error().unwrap_or_else(|| "none".into())
    );
    json(out, &message);
    out.extend_from_slice(b"}\n");
}

/// Appends one array element (a comma before all but the first); whether
/// the slice has room for more.
fn push(out: &mut Vec<u8>, first: &mut bool, entry: &impl Serialize) -> bool {
    if !std::mem::replace(first, false) {
        out.push(b',');
    }
    json(out, entry);
    out.len() < STATUS_SLICE_BYTES
}

/// Appends `value` as JSON. Into a `Vec` this fails only for types the
/// report does not have (maps with non-string keys, refusing serialisers).
fn json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    if let Err(e) = serde_json::to_writer(&mut *out, value) {
        tracing::error!(error = %e, "cannot encode a status entry");
        out.extend_from_slice(b"null");
    }
}

/// One outbox item's entry.
fn outbox_status(item: &OutboxItem) -> OutboxStatus {
    OutboxStatus {
        seq: item.seq,
        queued_unix: item.queued_unix,
        summary: item.body.summary(),
        refused: item.refused,
    }
}

/// The inputs of "why is this waiting".
#[derive(Debug)]
struct Why {
    now: u64,
    links: Links,
    reach: Reachability,
    policy: RetryPolicy,
    image_cap: Option<u64>,
}

impl Why {
    fn new(context: &ControlContext, values: &ServerValues, now: u64, links: Links) -> Why {
        Why {
            now,
            links,
            reach: match values.unreachable_since {
                Some(since) => Reachability::UnreachableSince(since),
                None => Reachability::Reachable,
            },
            policy: RetryPolicy::effective(&context.settings, values),
            image_cap: context.settings.download.bandwidth_limit.map(|c| c.get()),
        }
    }

    /// One package's entry, given its checkpoint and download task.
    fn package_status(
        &self,
        p: &PackageRecord,
        checkpoint: Option<&CheckpointRecord>,
        task: Option<&TaskRecord>,
    ) -> PackageStatus {
        PackageStatus {
            id: p.id.clone(),
            name: p.name.clone(),
            required: p.required,
            accepted: p.accepted,
            state: p.state.to_string(),
            bytes_done: checkpoint.map(|c| c.bytes_done).or_else(|| {
                // Verified and on disk: complete.
                matches!(
                    p.state,
                    PackageState::Downloaded | PackageState::Installing | PackageState::Installed
                )
                .then(|| p.instructions.as_ref().and_then(|i| i.package_size))
                .flatten()
            }),
            bytes_total: checkpoint
                .and_then(|c| c.total)
                .or_else(|| p.instructions.as_ref().and_then(|i| i.package_size)),
            last_outcome: p.last_outcome.as_ref().map(|o| match o.message_id {
                Some(id) => format!("{id}: {}", o.detail),
                None => o.detail.clone(),
            }),
            next_step: self.package(p, task),
        }
    }

    /// One task's entry.
    fn task_status(&self, t: &TaskRecord) -> TaskStatus {
        TaskStatus {
            id: t.id.to_string(),
            next_due_unix: t.next_due_unix,
            period_secs: t.period_secs,
            attempts: t.attempts,
            last_error: t.last_error.clone(),
            waiting: self.task(t),
        }
    }

    /// Why a task waits, in words; `None` when it would run now.
    fn task(&self, task: &TaskRecord) -> Option<String> {
        explain(task, self.now, self.links, self.reach, self.policy).map(|w| self.words(&w))
    }

    fn words(&self, wait: &Wait) -> String {
        match wait {
            Wait::NotDue { at_unix } => {
                format!("not due until {} (start time not reached)", when(*at_unix))
            }
            Wait::Retry {
                attempt,
                max,
                at_unix,
            } => format!("retry {attempt} of {max} at {}", when(*at_unix)),
            Wait::Offline => "offline: no network link is up".to_owned(),
            Wait::LinkNotAllowed { flags, up } => format!(
                "its Flags ({}) allow only {}; up now: {up}",
                LinkFlags(*flags),
                allowed_classes(*flags)
            ),
            Wait::ServerUnreachable { since_unix } => {
                format!(
                    "the server has not answered since {}; waiting for a poll to get through",
                    when(*since_unix)
                )
            }
        }
    }

    /// The next step of a package and, when it waits, why.
    fn package(&self, package: &PackageRecord, task: Option<&TaskRecord>) -> String {
        let instructions = package.instructions.as_ref();
        let limit = [instructions.and_then(|i| i.bandwidth_limit), self.image_cap]
            .into_iter()
            .flatten()
            .min();
        let exec_only = instructions
            .and_then(|i| i.recurrence.as_ref())
            .is_some_and(|r| r.behavior == RecurrenceBehavior::ExecuteOnly);
        match package.state {
            PackageState::AwaitingInstructions => {
                "request its instructions at the next poll".to_owned()
            }
            PackageState::Pending if !package.required && !package.accepted => {
                format!("optional: waiting for `dmagent accept {}`", package.id)
            }
            PackageState::Failed => {
                "failed; its instructions are requested again at the next poll".to_owned()
            }
            PackageState::Downloaded => "run the post-install step".to_owned(),
            PackageState::Installing => {
                "post-install step started; not re-run after a restart".to_owned()
            }
            PackageState::Downloading => {
                let mut text = "downloading".to_owned();
                if let Some(limit) = limit {
                    text.push_str(&format!(" (bandwidth-limited to {limit} B/s)"));
                }
                if let Some(wait) = task.and_then(|t| self.task(t)) {
                    text = format!("download interrupted; {wait}");
                }
                text
            }
            PackageState::Pending | PackageState::Installed => {
                let Some(task) = task else {
                    return if package.state == PackageState::Installed {
                        "done".to_owned()
                    } else {
                        "not scheduled".to_owned()
                    };
                };
                let action = match (package.state, exec_only) {
                    (PackageState::Installed, true) => "re-run its command",
                    (PackageState::Installed, false) => "download and run again",
                    _ => "download",
                };
                if task.next_due_unix > self.now && task.attempts == 0 {
                    let why = if package.state == PackageState::Installed {
                        "next occurrence"
                    } else {
                        "start time not reached"
                    };
                    return format!("{action} at {} ({why})", when(task.next_due_unix));
                }
                match self.task(task) {
                    None => format!("{action} now"),
                    Some(wait) => format!("{action}: {wait}"),
                }
            }
        }
    }
}

/// `2025-01-16 01:00:00 UTC`.
fn when(unix: u64) -> String {
    format!("{} UTC", crate::poller::schedule::civil(unix))
}

/// The link classes a `Flags` value allows, in words.
fn allowed_classes(flags: u32) -> String {
    let names: Vec<&str> = [
        (0x1, "low bandwidth"),
        (0x2, "high bandwidth"),
        (0x4, "docked"),
    ]
    .into_iter()
    .filter_map(|(bit, name)| (flags & bit != 0).then_some(name))
    .collect();
    if names.is_empty() {
        "any link".to_owned()
    } else {
        names.join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Settings;

    fn context() -> ControlContext {
        ControlContext {
            settings: Settings::default(),
            device_id: Some("DEV-1".into()),
            daemon_running: true,
            clock: Arc::new(ManualClock::new(1_800)),
        }
    }

    /// A database with 40 packages, some downloading with a checkpoint,
    /// tasks whose ID order is not their due order, and an outbox.
    fn populated(dir: &Path) -> Store {
        let store = Store::open(dir.join("dmagent.redb")).expect("open");
        store
            .write(|tx| {
                for i in 0..40 {
                    let mut p = PackageRecord::new(format!("PKG-{i:02}"), 1_000);
                    p.state = if i % 3 == 0 {
                        PackageState::Downloading
                    } else {
                        PackageState::Pending
                    };
                    tx.put_package(&p)?;
                }
                tx.put_task(&TaskRecord::download("PKG-03", 2_000, 0, 1_000))?;
                tx.put_task(&TaskRecord::download("PKG-04", 3_000, 0, 1_000))?;
                tx.put_task(&TaskRecord::poll(1_500, 3_600, 1_000))?;
                tx.put_task(&TaskRecord::report(
                    crate::protocol::ReportType::MachineInventory,
                    900,
                    86_400,
                    1_000,
                ))?;
                tx.put_checkpoint(&CheckpointRecord {
                    package_id: "PKG-03".into(),
                    url: "http://example.invalid/p".into(),
                    etag: None,
                    bytes_done: 4_096,
                    total: Some(10_000),
                    updated_unix: 1_500,
                })?;
                for report_type in [
                    crate::protocol::ReportType::SoftwareInventory,
                    crate::protocol::ReportType::MachineInventory,
                ] {
                    tx.enqueue_at(
                        crate::store::OutboxBody::Report {
                            report_type,
                            xml: b"<Report/>".to_vec(),
                        },
                        1_700,
                    )?;
                }
                Ok(())
            })
            .expect("write");
        store
    }

    /// The daemon streams the report entry by entry; read back (and its
    /// tasks sorted, as the client does) it must be the report built from a
    /// whole snapshot, checkpoints and tasks matched to their packages.
    #[test]
    fn the_streamed_report_is_the_snapshot_report() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = populated(dir.path());
        let context = context();
        let mut line = Vec::new();
        StatusReport::write_response(&store, &context, &mut line).expect("stream");
        assert!(line.starts_with(br#"{"result":"status","#));
        assert!(line.ends_with(b"}\n"), "one line, newline-terminated");
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);

        let Response::Status(streamed) = StatusReport::respond(&store, &context) else {
            panic!("not a status response");
        };
        let links =
            crate::scheduler::links::probe(&context.settings.links, Path::new("/sys/class/net"));
        let whole = StatusReport::from_snapshot(
            &store.snapshot().expect("snapshot"),
            &context,
            1_800,
            links,
        );
        assert_eq!(*streamed, whole);
        assert_eq!(streamed.packages.len(), 40);
        assert_eq!(streamed.outbox.len(), 2);
        let p3 = &streamed.packages[3];
        assert_eq!(
            (p3.id.as_str(), p3.bytes_done, p3.bytes_total),
            ("PKG-03", Some(4_096), Some(10_000))
        );
        let due: Vec<&str> = streamed.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            due,
            [
                "report:machine",
                "poll",
                "download:PKG-03",
                "download:PKG-04"
            ]
        );
    }

    /// A reply of many slices, each about one slice long, is one report
    /// from one transaction: what is written between two slices is not in it.
    #[test]
    fn slices_are_bounded_and_read_one_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = populated(dir.path());
        store
            .write(|tx| {
                for i in 0..2_000 {
                    tx.put_package(&PackageRecord::new(format!("BULK-{i:04}"), 1_000))?;
                    tx.put_task(&TaskRecord::download(
                        &format!("BULK-{i:04}"),
                        5_000,
                        0,
                        1_000,
                    ))?;
                }
                Ok(())
            })
            .expect("write");
        let context = context();
        let whole = {
            let mut line = Vec::new();
            StatusReport::write_response(&store, &context, &mut line).expect("stream");
            line
        };

        let mut stream = StatusStream::begin(&store, &context);
        let mut line = Vec::new();
        let mut slices = 0;
        loop {
            let mut slice = Vec::new();
            let more = stream.next_slice(&store, &mut slice);
            slices += 1;
            assert!(
                slice.len() < STATUS_SLICE_BYTES + 4_096,
                "slice {slices} is {} bytes",
                slice.len()
            );
            line.extend_from_slice(&slice);
            if slices == 1 {
                store
                    .write(|tx| tx.put_package(&PackageRecord::new("LATE", 1_000)))
                    .expect("write between slices");
            }
            if !more {
                break;
            }
        }
        assert!(slices > 5, "{slices} slices for ~800 KB");
        assert_eq!(
            line, whole,
            "the reply is the snapshot from its first slice"
        );
        let Response::Status(report) = serde_json::from_slice(&line).expect("one JSON line") else {
            panic!("not a status response");
        };
        assert_eq!(report.packages.len(), 2_040);
        assert_eq!(report.tasks.len(), 2_004);
    }

    /// A client that stops reading: the error comes back, nothing panics, and
    /// no more is written after the first failure.
    #[test]
    fn a_failing_client_gets_a_cut_line_and_the_error_is_returned() {
        struct Fails {
            room: usize,
            written: usize,
        }
        impl Write for Fails {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.written + buf.len() > self.room {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, "client gone"));
                }
                self.written += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let store = populated(dir.path());
        let mut client = Fails {
            room: 0,
            written: 0,
        };
        let e = StatusReport::write_response(&store, &context(), &mut client)
            .expect_err("the client is gone");
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(client.written, 0);
    }
}
