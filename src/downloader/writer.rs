//! The blocking half of a transfer: it owns the partial file and the SHA-256.
//! The async half feeds it chunks through a bounded channel; everything that
//! touches the disk (writes, fdatasync, the checkpoint, the final rename)
//! happens here, on a blocking thread.
//!
//! Periodic checkpoints are made by a [`Syncer`] thread beside the writer, so
//! the fdatasync that makes them durable overlaps the download instead of
//! stalling it (three fsyncs per checkpoint on the writer's own thread cost a
//! 1 GiB download more than the transfer itself). A `kill -9` loses nothing
//! written either way: within one boot the checkpoint counts the whole partial
//! file (see [`checkpoint::load`]); the synced figure matters after a reboot.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc::Receiver;

use super::checkpoint::{self, sync_dir, Checkpoint};
use super::fetch::FetchError;
use super::hasher::BackgroundHasher;
use super::hex;
use super::paths::{checkpoint_path, checkpoint_temp_path, partial_path};

/// What the async half tells the writer.
#[derive(Debug)]
pub(super) enum Msg<B> {
    /// The next bytes of the body.
    Data(B),
    /// The body ended: verify, then publish under the final name.
    Finish,
    /// The transfer failed: sync and checkpoint what was written. (A closed
    /// channel, when the fetch future is dropped, means the same.)
    Abort,
}

/// What the writer was started with.
#[derive(Debug)]
pub(super) struct Setup {
    /// The destination directory.
    pub dir: PathBuf,
    /// The checkpoint to keep; its `bytes_done` is where this response starts.
    pub checkpoint: Checkpoint,
    /// Bytes between checkpoints.
    pub interval: u64,
    /// The verified file's name inside `dir`.
    pub final_name: String,
}

/// How the writer ended without an error.
#[derive(Debug)]
pub(super) enum End {
    /// Verified and renamed to `path`.
    Done {
        path: PathBuf,
        size: u64,
        sha256: String,
    },
    /// Stopped early; the checkpoint says `bytes_done`.
    Saved { bytes_done: u64 },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

struct Writer<B> {
    setup: Setup,
    part: PathBuf,
    file: File,
    /// Taken by [`Writer::finish`].
    hasher: Option<BackgroundHasher<B>>,
    bytes_done: u64,
    since_checkpoint: u64,
    syncer: Option<Syncer>,
}

/// A thread that makes checkpoints durable in the background: given an
/// offset the writer has reached, it fdatasyncs the partial file and then
/// records the offset. Requests that pile up while a sync runs collapse into
/// the newest one, so a slow disk makes checkpoints rarer, never the download
/// slower.
struct Syncer {
    tx: mpsc::Sender<u64>,
    handle: JoinHandle<io::Result<()>>,
}

impl Syncer {
    fn start(file: &File, dir: PathBuf, checkpoint: Checkpoint) -> io::Result<Syncer> {
        let file = file.try_clone()?;
        let (tx, rx) = mpsc::channel::<u64>();
        let handle = std::thread::Builder::new()
            .name("dmagent-sync".into())
            .spawn(move || {
                let mut cp = checkpoint;
                while let Ok(mut offset) = rx.recv() {
                    while let Ok(newer) = rx.try_recv() {
                        offset = newer;
                    }
                    file.sync_data()?;
                    cp.bytes_done = offset;
                    checkpoint::store(&dir, &cp)?;
                }
                Ok(())
            })?;
        Ok(Syncer { tx, handle })
    }

    /// Ask for a checkpoint at `offset`; false if the thread has stopped (on
    /// an error [`Syncer::stop`] returns).
    fn request(&self, offset: u64) -> bool {
        self.tx.send(offset).is_ok()
    }

    /// Let the pending checkpoint finish and end the thread.
    fn stop(self) -> io::Result<()> {
        drop(self.tx);
        self.handle
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("checkpoint thread panicked")))
    }
}

/// Run the writer until [`Msg::Finish`], [`Msg::Abort`] or a closed channel.
pub(super) fn run<B: AsRef<[u8]> + Send + 'static>(
    setup: Setup,
    mut rx: Receiver<Msg<B>>,
) -> Result<End, FetchError> {
    let mut w = Writer::open(setup)?;
    loop {
        match rx.blocking_recv() {
            Some(Msg::Data(chunk)) => {
                if let Err(e) = w.write(chunk) {
                    if matches!(e, FetchError::Io { .. }) {
                        // Best effort: keep what is known to be written.
                        let _ = w.save();
                    }
                    return Err(e);
                }
            }
            Some(Msg::Finish) => return w.finish(),
            Some(Msg::Abort) | None => {
                w.save()?;
                return Ok(End::Saved {
                    bytes_done: w.bytes_done,
                });
            }
        }
    }
}

impl<B: AsRef<[u8]> + Send + 'static> Writer<B> {
    /// Open the partial file, cut it to the starting offset, hash the prefix
    /// we keep, and record the checkpoint for this response.
    fn open(setup: Setup) -> Result<Writer<B>, FetchError> {
        let part = partial_path(&setup.dir, &setup.checkpoint.package_id);
        let start = setup.checkpoint.bytes_done;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)
            .map_err(io_err(&part))?;
        file.set_len(start).map_err(io_err(&part))?;
        let mut hasher = Sha256::new();
        if start > 0 {
            file.seek(SeekFrom::Start(0)).map_err(io_err(&part))?;
            let mut prefix = (&mut file).take(start);
            let mut buf = vec![0u8; 64 * 1024];
            let mut read = 0u64;
            loop {
                let n = prefix.read(&mut buf).map_err(io_err(&part))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                read += n as u64;
            }
            if read != start {
                return Err(FetchError::Io {
                    path: part,
                    source: io::Error::new(io::ErrorKind::UnexpectedEof, "partial file shrank"),
                });
            }
        }
        file.seek(SeekFrom::Start(start)).map_err(io_err(&part))?;
        checkpoint::store(&setup.dir, &setup.checkpoint).map_err(io_err(&checkpoint_path(
            &setup.dir,
            &setup.checkpoint.package_id,
        )))?;
        let syncer = Syncer::start(&file, setup.dir.clone(), setup.checkpoint.clone())
            .map_err(io_err(&part))?;
        let hasher = BackgroundHasher::start(hasher).map_err(io_err(&part))?;
        Ok(Writer {
            setup,
            part,
            file,
            hasher: Some(hasher),
            bytes_done: start,
            since_checkpoint: 0,
            syncer: Some(syncer),
        })
    }

    fn write(&mut self, chunk: B) -> Result<(), FetchError> {
        let len = chunk.as_ref().len() as u64;
        let new_total = self.bytes_done + len;
        if let Some(expected) = self.setup.checkpoint.expected_size {
            if new_total > expected {
                self.discard();
                return Err(FetchError::SizeMismatch {
                    expected,
                    actual: new_total,
                });
            }
        }
        self.file
            .write_all(chunk.as_ref())
            .map_err(io_err(&self.part))?;
        self.hasher
            .as_mut()
            .map_or_else(
                || Err(io::Error::other("hash already final")),
                |h| h.update(chunk),
            )
            .map_err(io_err(&self.part))?;
        self.bytes_done = new_total;
        self.since_checkpoint += len;
        if self.since_checkpoint >= self.setup.interval {
            self.since_checkpoint = 0;
            let alive = self
                .syncer
                .as_ref()
                .is_some_and(|s| s.request(self.bytes_done));
            if !alive {
                // The thread stopped on an error: that error is this write's.
                self.stop_syncer()?;
                self.save()?;
            }
        }
        Ok(())
    }

    /// Waits for the background checkpoint thread to finish; its error, if
    /// it stopped on one.
    fn stop_syncer(&mut self) -> Result<(), FetchError> {
        match self.syncer.take() {
            Some(s) => s.stop().map_err(io_err(&self.part)),
            None => Ok(()),
        }
    }

    /// fdatasync the data, then record it in the checkpoint (after the
    /// background thread is done, so the two never write it at once).
    fn save(&mut self) -> Result<(), FetchError> {
        // Whatever it failed at is redone here, and this result is the one
        // that counts.
        let _ = self.stop_syncer();
        self.file.sync_data().map_err(io_err(&self.part))?;
        self.setup.checkpoint.bytes_done = self.bytes_done;
        checkpoint::store(&self.setup.dir, &self.setup.checkpoint).map_err(io_err(
            &checkpoint_path(&self.setup.dir, &self.setup.checkpoint.package_id),
        ))?;
        self.since_checkpoint = 0;
        Ok(())
    }

    /// Delete the partial data and the checkpoint (after a failed verification).
    fn discard(&mut self) {
        // Its error no longer matters: everything it wrote goes.
        let _ = self.stop_syncer();
        if let Err(e) = checkpoint::remove(&self.setup.dir, &self.setup.checkpoint.package_id) {
            tracing::warn!(dir = %self.setup.dir.display(), error = %e, "cannot delete partial download");
        }
    }

    fn finish(mut self) -> Result<End, FetchError> {
        let t0 = std::time::Instant::now();
        self.stop_syncer()?;
        let t1 = std::time::Instant::now();
        self.file.sync_data().map_err(io_err(&self.part))?;
        let t2 = std::time::Instant::now();
        let state = self
            .hasher
            .take()
            .map_or_else(
                || Err(io::Error::other("hash already final")),
                BackgroundHasher::finish,
            )
            .map_err(io_err(&self.part))?;
        tracing::debug!(
            package = %self.setup.checkpoint.package_id,
            last_checkpoint_ms = (t1 - t0).as_millis() as u64,
            final_sync_ms = (t2 - t1).as_millis() as u64,
            hash_tail_ms = t2.elapsed().as_millis() as u64,
            "body written; waited for the background work"
        );
        let sha256 = hex(&state.finalize());
        let cp = self.setup.checkpoint.clone();
        if let Some(expected) = cp.expected_size {
            if expected != self.bytes_done {
                self.discard();
                return Err(FetchError::SizeMismatch {
                    expected,
                    actual: self.bytes_done,
                });
            }
        }
        if let Some(expected) = &cp.expected_sha256 {
            if *expected != sha256 {
                self.discard();
                return Err(FetchError::DigestMismatch {
                    expected: expected.clone(),
                    actual: sha256,
                });
            }
        }
        let dir = &self.setup.dir;
        let path = dir.join(&self.setup.final_name);
        crate::failpoint::crash_point("downloader.rename.before");
        fs::rename(&self.part, &path).map_err(io_err(&path))?;
        sync_dir(dir).map_err(io_err(dir))?;
        crate::failpoint::crash_point("downloader.rename.after");
        for p in [
            checkpoint_path(dir, &cp.package_id),
            checkpoint_temp_path(dir, &cp.package_id),
        ] {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&p)(e)),
                _ => {}
            }
        }
        sync_dir(dir).map_err(io_err(dir))?;
        Ok(End::Done {
            path,
            size: self.bytes_done,
            sha256,
        })
    }
}
