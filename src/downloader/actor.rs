//! The downloader actor: runs the four phases of a download event (part B
//! §1.2) for one due task at a time:
//!
//! 1. location request — the lowest `metric` among HTTP locations, the next
//!    one on failure;
//! 2. status 11030, committed with the `Downloading` state;
//! 3. the resumable, verified download ([`super::fetch()`]), then 11031 or
//!    11032, committed with the new state;
//! 4. the post-install step through the plugin host, with the `Installing`
//!    state committed first, then 11035 or 11036.
//!
//! `SourceFiles=No` and the later occurrences of an `Execute Only` package
//! skip phases 1–3. Every status message is queued in the same transaction as
//! the state change it reports; the reporter delivers it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, Recipient};
use dmagent_plugin_api::PostInstallRequest;

use super::{checkpoint, fetch, FetchError, FetchJob, Fetched, Progress};
use crate::agent::{AgentContext, AgentError};
use crate::config::Settings;
use crate::poller::schedule::civil;
use crate::protocol::{
    Action, ClientLocation, Document, Location, MessageId, PackageInstructions, PackageLocation,
    PackageLocationRequest, RecurrenceBehavior,
};
use crate::reporter::actor::Flush;
use crate::reporter::status_message;
use crate::scheduler::actor::TaskFinished;
use crate::scheduler::Attempt;
use crate::store::{
    CheckpointRecord, OutboxBody, Outcome, PackageRecord, PackageState, TaskKind, TaskRecord,
};

/// Run the download event of this task.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct RunDownload {
    /// The download task as the scheduler saw it.
    pub task: TaskRecord,
}

/// See the module docs.
#[derive(Debug)]
pub struct DownloaderActor {
    context: Arc<AgentContext>,
    scheduler: Recipient<TaskFinished>,
    reporter: Recipient<Flush>,
    /// One event at a time: downloads share the link and the disk.
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl DownloaderActor {
    /// A downloader reporting to `scheduler` and waking `reporter`.
    pub fn new(
        context: Arc<AgentContext>,
        scheduler: Recipient<TaskFinished>,
        reporter: Recipient<Flush>,
    ) -> Self {
        DownloaderActor {
            context,
            scheduler,
            reporter,
            one_at_a_time: Arc::default(),
        }
    }
}

impl Actor for DownloaderActor {
    type Context = Context<Self>;
}

impl Handler<RunDownload> for DownloaderActor {
    type Result = ();

    fn handle(&mut self, run: RunDownload, _: &mut Context<Self>) {
        let event = Event {
            context: self.context.clone(),
            reporter: self.reporter.clone(),
            task: run.task,
        };
        let scheduler = self.scheduler.clone();
        let lock = self.one_at_a_time.clone();
        actix_rt::spawn(async move {
            let _turn = lock.lock().await;
            let attempt = match event.run().await {
                Ok(attempt) => attempt,
                Err(e) => e.attempt(),
            };
            let _ = scheduler.try_send(TaskFinished {
                id: event.task.id.clone(),
                attempt,
            });
        });
    }
}

/// One occurrence of a download event.
struct Event {
    context: Arc<AgentContext>,
    reporter: Recipient<Flush>,
    task: TaskRecord,
}

impl Event {
    async fn run(&self) -> Result<Attempt, AgentError> {
        let TaskKind::Download { package_id } = &self.task.kind else {
            return Ok(Attempt::Terminal("not a download task".into()));
        };
        let id = package_id.clone();
        let Some(package) = self.context.db(move |s| s.package(&id)).await? else {
            return Ok(Attempt::Terminal(format!(
                "package {package_id} is no longer known"
            )));
        };
        let Some(instructions) = package.instructions.clone() else {
            return Ok(Attempt::Terminal(format!(
                "package {package_id} has no instructions"
            )));
        };
        if let Some(ended) = self.already_ended(&package) {
            tracing::info!(package = %package.id, "this attempt ended before the agent stopped; not run again");
            return Ok(ended);
        }
        if package.state == PackageState::Installing {
            return self.interrupted(&package).await;
        }
        // X8, before anything is fetched, written or run: the instructions as
        // stored are the ones every later phase acts on.
        let now = i64::try_from(self.context.clock.now_unix()).unwrap_or(i64::MAX);
        match crate::trust::check(&self.context.settings.trust, &instructions, now) {
            Ok(crate::trust::Verdict::Signed {
                key_id,
                endorsed_by,
            }) => {
                tracing::info!(package = %package.id, key = %key_id, endorsed_by = ?endorsed_by, "signatures verified");
            }
            Ok(crate::trust::Verdict::Unverified(why)) => {
                tracing::debug!(package = %package.id, "signatures not checked: {why}");
            }
            Err(refused) => {
                tracing::warn!(package = %package.id, "{refused}; nothing is downloaded or run");
                return self
                    .fail_with(&package, "signature", &refused.to_string(), false)
                    .await;
            }
        }
        let recurrence = instructions.recurrence.as_ref();
        let rerun = package.state == PackageState::Installed && recurrence.is_some();
        let destination = rerun
            .then(|| recurrence.and_then(|r| r.local_destination.clone()))
            .flatten()
            .or_else(|| instructions.local_destination.clone());
        let root = self.context.settings.paths.download_root.clone();
        let dest_id = package.id.clone();
        let previous = package.downloaded_file.clone();
        let (dest_dir, kept_file) = match self
            .context
            .blocking(move || {
                std::fs::create_dir_all(&root)
                    .map_err(|e| AgentError::Download(format!("{}: {e}", root.display())))?;
                let dir = super::resolve_destination(&root, destination.as_deref(), &dest_id)
                    .map_err(|e| AgentError::Download(e.to_string()))?;
                std::fs::create_dir_all(&dir)
                    .map_err(|e| AgentError::Download(format!("{}: {e}", dir.display())))?;
                // The verified file of an earlier occurrence, if it is still there.
                let kept = previous.filter(|f| Path::new(f).is_file());
                Ok((dir, kept))
            })
            .await
        {
            Ok(found) => found,
            Err(e) => return self.fail_download(&package, &e.to_string(), false).await,
        };

        let exec_only = recurrence.is_some_and(|r| r.behavior == RecurrenceBehavior::ExecuteOnly);
        let file = if instructions.source_files == Some(false) {
            None
        } else if exec_only && kept_file.is_some() {
            kept_file.map(PathBuf::from)
        } else if let Some(verified) = self.downloaded_before_stop(&package, &instructions).await? {
            // 11031 went out before the agent stopped: straight to phase 4.
            Some(verified)
        } else {
            match self.download(&package, &instructions, &dest_dir).await? {
                Ok(fetched) => Some(fetched.path),
                Err(attempt) => return Ok(attempt),
            }
        };
        let command = rerun
            .then(|| recurrence.and_then(|r| r.command_line.clone()))
            .flatten()
            .or_else(|| instructions.command_line.clone());
        self.post_install(&package.id, command, &dest_dir, file)
            .await
    }

    /// How this attempt ended, if it did before the agent stopped: its end was
    /// committed with the package's state, the scheduler's record of it not.
    fn already_ended(&self, package: &PackageRecord) -> Option<Attempt> {
        if package.ended_attempt != Some(self.task.attempt_key()) {
            return None;
        }
        let detail = || {
            package
                .last_outcome
                .as_ref()
                .map_or_else(String::new, |o| o.detail.clone())
        };
        match package.state {
            PackageState::Installed => Some(Attempt::Succeeded),
            PackageState::Failed => Some(Attempt::Terminal(detail())),
            PackageState::Pending => Some(Attempt::Retryable(detail())),
            _ => None,
        }
    }

    /// The verified file of a package whose download end (11031) was
    /// committed before the agent stopped, checked again (size and SHA-256)
    /// so that nothing changed on disk since; `None` downloads as usual.
    async fn downloaded_before_stop(
        &self,
        package: &PackageRecord,
        instructions: &PackageInstructions,
    ) -> Result<Option<PathBuf>, AgentError> {
        if package.state != PackageState::Downloaded {
            return Ok(None);
        }
        let Some(file) = package.downloaded_file.clone().map(PathBuf::from) else {
            return Ok(None);
        };
        let (size, sha) = (
            instructions.package_size,
            instructions
                .hash
                .as_ref()
                .map(|h| h.hex.to_ascii_lowercase()),
        );
        let id = package.id.clone();
        self.context
            .blocking(move || {
                Ok(match super::verify_file(&file, size, sha.as_deref()) {
                    Ok(()) => Some(file),
                    Err(why) => {
                        tracing::info!(package = %id, file = %file.display(), "downloaded before the agent stopped, but {why}: downloading again");
                        None
                    }
                })
            })
            .await
    }

    /// Phases 1 to 3. `Ok(Err(attempt))`: the occurrence ended here.
    async fn download(
        &self,
        package: &PackageRecord,
        instructions: &PackageInstructions,
        dest_dir: &Path,
    ) -> Result<Result<Fetched, Attempt>, AgentError> {
        let context = &self.context;
        let values = context.db(|s| s.server_values()).await?;
        let url = context.server_url(&values)?;
        let request = PackageLocationRequest {
            package_id: package.id.clone(),
            client_location: ClientLocation::default(),
        };
        let exchange = context
            .transport
            .post_xml(
                &url,
                &context.headers(&values),
                Action::LocationRequest,
                request.encode(),
            )
            .await?;
        let locations = match PackageLocation::decode(&exchange.body) {
            Ok(answer) => http_locations(answer.locations),
            Err(e) => {
                return Ok(Err(self
                    .fail_download(package, &format!("location response refused: {e}"), false)
                    .await?))
            }
        };
        if locations.is_empty() {
            return Ok(Err(self
                .fail_download(
                    package,
                    "the location response names no HTTP location",
                    false,
                )
                .await?));
        }
        let expected_sha256 = match &instructions.hash {
            Some(hash) if hash.algorithm.eq_ignore_ascii_case("SHA-256") => {
                Some(hash.hex.to_ascii_lowercase())
            }
            Some(hash) => {
                let error = format!("unsupported Hash algorithm {:?}", hash.algorithm);
                return Ok(Err(self.fail_download(package, &error, false).await?));
            }
            None => None,
        };
        let cap = context.settings.download.bandwidth_limit.map(|c| c.get());
        let limit = [instructions.bandwidth_limit.filter(|&l| l > 0), cap]
            .into_iter()
            .flatten()
            .min();

        // Phase 2: 11030 goes out with the state change, resume facts included.
        let first = locations[0].clone();
        let (cp_dir, cp_id) = (dest_dir.to_path_buf(), package.id.clone());
        let resume = context
            .blocking(move || Ok(checkpoint::load(&cp_dir, &cp_id).ok()))
            .await?
            .and_then(|loaded| match loaded {
                // As `fetch` decides: the same source, or any location of the
                // same package when a SHA-256 checks the joined file.
                checkpoint::Loaded::Valid(cp)
                    if cp.expected_sha256 == expected_sha256
                        && cp.expected_size == instructions.package_size
                        && (super::paths::same_source(&cp.source_url, &first)
                            || expected_sha256.is_some()) =>
                {
                    Some(cp.bytes_done)
                }
                _ => None,
            });
        let size = instructions
            .package_size
            .map(|s| s.to_string())
            .unwrap_or_default();
        self.commit(package, PackageState::Downloading, None, |at| {
            Some(status_message(
                &package.id,
                MessageId::DOWNLOAD_STARTED,
                at,
                &[
                    ("URL", first.clone()),
                    ("Size", size.clone()),
                    ("Resume", resume.is_some().to_string()),
                    ("Offset", resume.unwrap_or(0).to_string()),
                ],
            ))
        })
        .await?;

        // Phase 3.
        let mut last_error = None;
        for url in &locations {
            let job = FetchJob {
                expected_size: instructions.package_size,
                expected_sha256: expected_sha256.clone(),
                bandwidth_limit: limit,
                ..FetchJob::new(&package.id, url, dest_dir)
            };
            let mut progress = ProgressRecorder::new(context.clone(), &package.id, url);
            let result = fetch(context.transport.client(), &job, &mut |p| {
                progress.observe(p)
            })
            .await;
            match result {
                Ok(fetched) => {
                    self.downloaded(package, &fetched).await?;
                    return Ok(Ok(fetched));
                }
                // Only a source that could not serve falls back to the next one;
                // a digest mismatch is the package, not the mirror.
                Err(e @ (FetchError::Http { .. } | FetchError::Network { .. }))
                    if url != locations.last().unwrap_or(url) =>
                {
                    tracing::warn!(package = %package.id, %url, "download source failed, trying the next: {e}");
                    last_error = Some(e);
                }
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            }
        }
        let (error, retryable) = match last_error {
            // A digest or size mismatch discards the file and counts as a
            // failed attempt: a later attempt may get the right bytes.
            Some(e @ (FetchError::DigestMismatch { .. } | FetchError::SizeMismatch { .. })) => {
                (e.to_string(), true)
            }
            Some(e) => (e.to_string(), e.is_retryable()),
            None => ("no location could be used".to_owned(), false),
        };
        Ok(Err(self.fail_download(package, &error, retryable).await?))
    }

    /// Commits `Downloaded` with 11031.
    async fn downloaded(
        &self,
        package: &PackageRecord,
        fetched: &Fetched,
    ) -> Result<(), AgentError> {
        tracing::info!(
            package = %package.id,
            bytes = fetched.size,
            fetched = fetched.bytes_fetched,
            resumed_from = fetched.resumed_from,
            "download verified"
        );
        let path = fetched.path.display().to_string();
        let (size, sha) = (fetched.size.to_string(), fetched.sha256.clone());
        let mut done = package.clone();
        done.downloaded_file = Some(path);
        let id = package.id.clone();
        self.commit(
            &done,
            PackageState::Downloaded,
            Some((
                Some(MessageId::DOWNLOAD_SUCCEEDED),
                "download verified".into(),
            )),
            |at| {
                Some(status_message(
                    &id,
                    MessageId::DOWNLOAD_SUCCEEDED,
                    at,
                    &[("BytesDownloaded", size.clone()), ("SHA256", sha.clone())],
                ))
            },
        )
        .await
    }

    /// Commits the end of a failed download with 11032 and says how the
    /// scheduler should count it.
    async fn fail_download(
        &self,
        package: &PackageRecord,
        error: &str,
        retryable: bool,
    ) -> Result<Attempt, AgentError> {
        self.fail_with(package, "download", error, retryable).await
    }

    /// [`Self::fail_download`] with the `ErrorCode` to report.
    async fn fail_with(
        &self,
        package: &PackageRecord,
        code: &'static str,
        error: &str,
        retryable: bool,
    ) -> Result<Attempt, AgentError> {
        let values = self.context.db(|s| s.server_values()).await?;
        let policy = self.context.retry_policy(&values);
        let recurring = self.task.period_secs.is_some();
        let will_retry = retryable && self.task.attempts < policy.max_retries;
        let state = if will_retry || recurring {
            PackageState::Pending
        } else {
            PackageState::Failed
        };
        let id = package.id.clone();
        let (retries, error_text) = (self.task.attempts.to_string(), error.to_owned());
        self.commit(
            package,
            state,
            Some((Some(MessageId::DOWNLOAD_FAILED), error.to_owned())),
            |at| {
                Some(status_message(
                    &id,
                    MessageId::DOWNLOAD_FAILED,
                    at,
                    &[
                        ("ErrorCode", code.to_owned()),
                        ("ErrorText", error_text.clone()),
                        ("RetryCount", retries.clone()),
                        ("WillRetry", will_retry.to_string()),
                    ],
                ))
            },
        )
        .await?;
        Ok(if retryable {
            Attempt::Retryable(error.to_owned())
        } else {
            Attempt::Terminal(error.to_owned())
        })
    }

    /// Phase 4.
    async fn post_install(
        &self,
        package_id: &str,
        command: Option<String>,
        dest_dir: &Path,
        file: Option<PathBuf>,
    ) -> Result<Attempt, AgentError> {
        let id = package_id.to_owned();
        let Some(package) = self.context.db(move |s| s.package(&id)).await? else {
            return Ok(Attempt::Terminal(format!(
                "package {package_id} was removed"
            )));
        };
        let Some(command) = command.filter(|c| !c.trim().is_empty()) else {
            self.commit(
                &package,
                PackageState::Installed,
                Some((None, "no post-install command".into())),
                |_| None,
            )
            .await?;
            return Ok(Attempt::Succeeded);
        };
        // Committed before the handler runs: a restart finds `Installing` and
        // does not run the step a second time.
        self.commit(&package, PackageState::Installing, None, |_| None)
            .await?;
        let (handler, rest) = crate::plugin_host::route_command_line(&command);
        let (handler, rest) = (handler.to_owned(), rest.to_owned());
        let request = PostInstallRequest {
            version: 1,
            package_id: package.id.clone(),
            package_dir: dest_dir.display().to_string(),
            package_file: file.map(|f| f.display().to_string()),
            command_line: rest,
            timeout_secs: self.context.settings.plugins.call_timeout.as_secs(),
            env: Default::default(),
            allowed_roots: vec![self
                .context
                .settings
                .paths
                .download_root
                .display()
                .to_string()],
        };
        let plugins = self.context.plugins.clone();
        let run_handler = handler.clone();
        let result = self
            .context
            .blocking(move || Ok(plugins.run_post_install(&run_handler, &request)))
            .await?;
        crate::failpoint::crash_point("downloader.post_install.returned");
        let (succeeded, exit_code, detail) = match result {
            Ok(r) if r.exit_code == 0 => (true, 0, format!("exit code 0 ({handler})")),
            Ok(r) => (
                false,
                r.exit_code,
                format!("exit code {}: {}", r.exit_code, r.output_tail.trim()),
            ),
            Err(failure) => (false, -1, failure.to_string()),
        };
        let (message, state) = if succeeded {
            (MessageId::COMMAND_SUCCEEDED, PackageState::Installed)
        } else {
            (MessageId::COMMAND_FAILED, PackageState::Failed)
        };
        tracing::info!(package = %package.id, %command, exit_code, succeeded, "post-install step finished");
        let id = package.id.clone();
        let mut params = vec![
            ("ExitCode", exit_code.to_string()),
            ("Command", command.clone()),
        ];
        if !succeeded {
            params.push(("ErrorText", truncate(&detail, 1024)));
        }
        self.commit(
            &package,
            state,
            Some((Some(message), detail.clone())),
            |at| Some(status_message(&id, message, at, &params)),
        )
        .await?;
        Ok(if succeeded {
            Attempt::Succeeded
        } else {
            Attempt::Terminal(detail)
        })
    }

    /// The agent stopped while the post-install step ran: its outcome is
    /// unknown, and running it again could run it twice. Report it failed;
    /// a recurring package tries again at its next occurrence.
    async fn interrupted(&self, package: &PackageRecord) -> Result<Attempt, AgentError> {
        let detail =
            "the agent stopped while the post-install step ran; it is not run a second time"
                .to_owned();
        let id = package.id.clone();
        let text = detail.clone();
        self.commit(
            package,
            PackageState::Failed,
            Some((Some(MessageId::COMMAND_FAILED), detail.clone())),
            |at| {
                Some(status_message(
                    &id,
                    MessageId::COMMAND_FAILED,
                    at,
                    &[("ExitCode", "-1".into()), ("ErrorText", text.clone())],
                ))
            },
        )
        .await?;
        Ok(Attempt::Terminal(detail))
    }

    /// One transaction: the package's new state and outcome, and the status
    /// message reporting it. Then wakes the reporter.
    async fn commit(
        &self,
        package: &PackageRecord,
        state: PackageState,
        outcome: Option<(Option<MessageId>, String)>,
        message: impl FnOnce(crate::protocol::CivilTime) -> Option<crate::protocol::StatusMessage>,
    ) -> Result<(), AgentError> {
        let now = self.context.clock.now_unix();
        let message = message(civil(now));
        let queued = message.is_some();
        let report_id = message.as_ref().and_then(|m| {
            m.parameters
                .iter()
                .find(|p| p.name == "ReportID")
                .map(|p| (m.message_id.0, p.value.clone()))
        });
        let id = package.id.clone();
        let downloaded_file = package.downloaded_file.clone();
        // The end of this attempt, committed with the state that ends it.
        let ended = matches!(
            state,
            PackageState::Installed | PackageState::Failed | PackageState::Pending
        )
        .then(|| self.task.attempt_key());
        self.context
            .db(move |s| {
                s.write(|tx| {
                    // Re-read: the poller may have removed or updated the package.
                    let Some(mut current) = tx.package(&id)? else {
                        return Ok(());
                    };
                    current.state = state;
                    current.updated_unix = now;
                    current.ended_attempt = ended;
                    if downloaded_file.is_some() {
                        current.downloaded_file = downloaded_file;
                    }
                    if let Some((message_id, detail)) = outcome {
                        current.last_outcome = Some(Outcome {
                            at_unix: now,
                            message_id: message_id.map(|m| m.0),
                            detail,
                        });
                    }
                    if state == PackageState::Downloaded {
                        tx.remove_checkpoint(&id)?;
                    }
                    tx.put_package(&current)?;
                    if let Some(message) = message {
                        tx.enqueue(OutboxBody::Status(message))?;
                    }
                    Ok(())
                })
            })
            .await?;
        if let Some((message_id, report_id)) = report_id {
            // Read by scripts/kill-soak.sh: every message committed must reach the server.
            tracing::debug!(package = %package.id, message_id, %report_id, "status message committed");
        }
        crate::failpoint::crash_point(match state {
            PackageState::Downloading => "downloader.started.committed",
            PackageState::Downloaded => "downloader.downloaded.committed",
            PackageState::Installing => "downloader.installing.committed",
            _ => "downloader.finished.committed",
        });
        if queued {
            let _ = self.reporter.try_send(Flush);
        }
        Ok(())
    }
}

/// HTTP URLs of `locations`, lowest `metric` first (part B G5); locations
/// without an HTTP URL (SMB only) are unusable here.
pub fn http_locations(mut locations: Vec<Location>) -> Vec<String> {
    locations.sort_by_key(|l| l.metric.unwrap_or(u32::MAX));
    locations
        .into_iter()
        .filter_map(|l| l.http_url)
        .filter(|u| {
            let lower = u.to_ascii_lowercase();
            lower.starts_with("http://") || lower.starts_with("https://")
        })
        .collect()
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Persists download progress to the database for `dmagent status`, at most
/// once a second and off the async thread.
struct ProgressRecorder {
    context: Arc<AgentContext>,
    package_id: String,
    url: String,
    last: Option<std::time::Instant>,
}

impl ProgressRecorder {
    fn new(context: Arc<AgentContext>, package_id: &str, url: &str) -> Self {
        ProgressRecorder {
            context,
            package_id: package_id.to_owned(),
            url: url.to_owned(),
            last: None,
        }
    }

    fn observe(&mut self, progress: Progress) {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last).as_secs() < 1)
        {
            return;
        }
        self.last = Some(now);
        let record = CheckpointRecord {
            package_id: self.package_id.clone(),
            url: self.url.clone(),
            etag: None,
            bytes_done: progress.bytes_done,
            total: progress.total,
            updated_unix: self.context.clock.now_unix(),
        };
        let context = self.context.clone();
        actix_rt::spawn(async move {
            // Only for display: a lost update is harmless, the `~PD-` file is
            // the real checkpoint.
            let _ = context
                .db(move |s| {
                    s.write(|tx| {
                        if tx.package(&record.package_id)?.is_some() {
                            tx.put_checkpoint(&record)?;
                        }
                        Ok(())
                    })
                })
                .await;
        });
    }
}

/// Deletes the checkpoint and partial data of a dropped package (blocking).
pub fn discard_partial(settings: &Settings, package: &PackageRecord) {
    let destination = package
        .instructions
        .as_ref()
        .and_then(|i| i.local_destination.clone());
    let Ok(dir) = super::resolve_destination(
        &settings.paths.download_root,
        destination.as_deref(),
        &package.id,
    ) else {
        return;
    };
    for path in [
        super::paths::checkpoint_path(&dir, &package.id),
        super::paths::partial_path(&dir, &package.id),
    ] {
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), "cannot remove partial download: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_metric_http_first_and_smb_only_skipped() {
        let loc = |metric, url: Option<&str>| Location {
            metric,
            http_url: url.map(str::to_owned),
            ..Location::default()
        };
        let urls = http_locations(vec![
            loc(Some(5), Some("http://b/pkg")),
            loc(Some(1), None),
            loc(Some(2), Some("https://a/pkg")),
            loc(None, Some("http://c/pkg")),
            loc(Some(0), Some("ftp://x/pkg")),
        ]);
        assert_eq!(urls, ["https://a/pkg", "http://b/pkg", "http://c/pkg"]);
    }
}
