//! The workloads: package files, a catalog for the reference server, and the
//! server itself in this process (so the suite can read what it received).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use dm_server::{RunningServer, ServerConfig};

/// Writes `size` bytes of deterministic pseudo-random data to `path`, 1 MiB
/// at a time (no buffer grows with the size).
pub fn write_payload(path: &Path, size: u64) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 56) as u8;
    }
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let mut left = size;
    let mut n: u64 = 0;
    while left > 0 {
        // Each MiB differs from the last, so no two blocks are equal.
        block[..8].copy_from_slice(&n.to_le_bytes());
        let take = left.min(block.len() as u64) as usize;
        f.write_all(&block[..take])?;
        left -= take as u64;
        n += 1;
    }
    f.flush()?;
    Ok(())
}

/// One package of the bench catalog.
#[derive(Debug, Clone)]
pub struct PackageDef {
    /// Package ID.
    pub id: String,
    /// File name under `files/`.
    pub file: String,
    /// Size of the generated file.
    pub size: u64,
    /// `bandwidth_limit` (bytes per second).
    pub bandwidth_limit: Option<u64>,
    /// `external_base_url`: the location response points there.
    pub external_base_url: Option<String>,
}

impl PackageDef {
    /// A package `id` of `size` bytes served by dm-server itself, no cap.
    pub fn new(id: &str, size: u64) -> PackageDef {
        PackageDef {
            id: id.to_owned(),
            file: format!("{}.bin", id.to_ascii_lowercase()),
            size,
            bandwidth_limit: None,
            external_base_url: None,
        }
    }
}

/// A catalog directory: package files and definitions, settings that keep
/// the agent quiet (hourly polls, no reports), and assignment rules by
/// device-name glob.
#[derive(Debug)]
pub struct Catalog {
    dir: PathBuf,
    rules: Vec<(String, Vec<String>)>,
}

impl Catalog {
    /// Creates the catalog in `dir` with `packages` (files generated) and no rules.
    pub fn create(dir: &Path, packages: &[PackageDef]) -> anyhow::Result<Catalog> {
        std::fs::create_dir_all(dir.join("packages"))?;
        for p in packages {
            let file = dir.join("files").join(&p.file);
            let fresh = std::fs::metadata(&file).is_ok_and(|m| m.len() == p.size);
            if !fresh {
                write_payload(&file, p.size)?;
            }
            let mut def = format!(
                "id = \"{}\"\nname = \"{}\"\nrequired = true\ndestination = \"{}\"\nfile = \"files/{}\"\n",
                p.id,
                p.id,
                p.id.to_ascii_lowercase(),
                p.file
            );
            if let Some(b) = p.bandwidth_limit {
                let _ = writeln!(def, "bandwidth_limit = {b}");
            }
            if let Some(u) = &p.external_base_url {
                let _ = writeln!(def, "external_base_url = \"{u}\"");
            }
            std::fs::write(dir.join("packages").join(format!("{}.toml", p.id)), def)?;
        }
        let catalog = Catalog {
            dir: dir.to_path_buf(),
            rules: Vec::new(),
        };
        catalog.write()?;
        Ok(catalog)
    }

    /// The catalog directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write(&self) -> anyhow::Result<()> {
        let mut text = String::from(
            "[client_settings]\nversion = \"1\"\npoll_interval = \"0000-00-00 01:00:00\"\n\
             failure_retry_count = 5\nfailure_retry_interval = \"0000-00-00 00:00:01\"\n\n\
             [machine_inventory]\nversion = \"1\"\nenabled = false\n\n\
             [software_inventory]\nversion = \"1\"\nenabled = false\n\n\
             [file_collection]\nversion = \"1\"\nenabled = false\n",
        );
        for (i, (glob, ids)) in self.rules.iter().enumerate() {
            let list: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
            let _ = write!(
                text,
                "\n[[assign]]\nname = \"rule {i}\"\ndevice_name = \"{glob}\"\npackages = [{}]\n",
                list.join(", ")
            );
        }
        std::fs::write(self.dir.join("catalog.toml"), text)?;
        Ok(())
    }

    /// Assigns `ids` to devices whose name matches `glob`, and makes
    /// `server` load the change now.
    pub fn assign(
        &mut self,
        server: &RunningServer,
        glob: &str,
        ids: &[&str],
    ) -> anyhow::Result<()> {
        self.rules.push((
            glob.to_owned(),
            ids.iter().map(|s| (*s).to_owned()).collect(),
        ));
        self.write()?;
        server
            .catalog()
            .reload()
            .map_err(|e| anyhow::anyhow!("catalog reload: {e}"))
    }
}

/// dm-server in this process on 127.0.0.1:0 with `workers` workers.
pub fn start_server(
    catalog: &Catalog,
    state_dir: &Path,
    workers: usize,
) -> anyhow::Result<RunningServer> {
    start_server_signing(catalog, state_dir, workers, None)
}

/// [`start_server`] that signs its instruction responses (X8) with `signer`.
pub fn start_server_signing(
    catalog: &Catalog,
    state_dir: &Path,
    workers: usize,
    signer: Option<std::sync::Arc<dm_server::signing::Signer>>,
) -> anyhow::Result<RunningServer> {
    let mut cfg = ServerConfig::new(catalog.dir(), state_dir);
    cfg.workers = workers;
    cfg.signer = signer;
    cfg.catalog_poll_ms = 3_600_000; // reloaded explicitly by `Catalog::assign`
    dm_server::start(cfg).map_err(|e| anyhow::anyhow!("dm-server: {e}"))
}

/// A status message as the server stored it, with its arrival in ms since
/// the Unix epoch.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// `@messageID`.
    pub message_id: u32,
    /// Receive time, milliseconds since the epoch.
    pub at_ms: i64,
    /// The status parameters.
    pub parameters: Vec<(String, String)>,
}

/// The status messages `device` sent about `package`, oldest first.
pub fn arrivals(
    server: &RunningServer,
    device: &str,
    package: &str,
) -> anyhow::Result<Vec<Arrival>> {
    let statuses = server
        .state()
        .statuses(device)
        .map_err(|e| anyhow::anyhow!("server state: {e}"))?;
    statuses
        .into_iter()
        .filter(|s| s.package_id == package)
        .map(|s| {
            Ok(Arrival {
                message_id: s.message_id,
                at_ms: rfc3339_ms(&s.received_at)
                    .with_context(|| format!("bad received_at {:?}", s.received_at))?,
                parameters: s
                    .parameters
                    .into_iter()
                    .map(|p| (p.name, p.value))
                    .collect(),
            })
        })
        .collect()
}

/// Waits (bounded by `limit`) until `device` has sent `message_id` about
/// `package`; checks every 5 ms.
pub fn wait_message(
    server: &RunningServer,
    device: &str,
    package: &str,
    message_id: u32,
    limit: Duration,
) -> anyhow::Result<Vec<Arrival>> {
    let deadline = Instant::now() + limit;
    loop {
        let got = arrivals(server, device, package)?;
        if got.iter().any(|a| a.message_id == message_id) {
            return Ok(got);
        }
        if Instant::now() > deadline {
            let ids: Vec<u32> = got.iter().map(|a| a.message_id).collect();
            bail!("{device} sent no {message_id} for {package} within {limit:?} (got {ids:?})");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How many polls `device` has made (0 before its first).
pub fn polls(server: &RunningServer, device: &str) -> u64 {
    server
        .state()
        .device(device)
        .ok()
        .flatten()
        .map_or(0, |r| r.poll_count)
}

/// Waits (bounded, 30 s) until `device` has polled more than `before` times.
pub fn wait_polled(server: &RunningServer, device: &str, before: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while polls(server, device) <= before {
        if Instant::now() > deadline {
            bail!("{device} never polled");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// One daemon for `device` on a fresh state directory `dir` runs until it
/// has sent the download end (11031) of `package`, then stops; what the
/// server received about the package.
pub fn download_once(
    agent_bin: &Path,
    server: &RunningServer,
    dir: &Path,
    device: &str,
    package: &str,
    limit: Duration,
) -> anyhow::Result<Vec<Arrival>> {
    download_once_with(agent_bin, server, dir, device, package, limit, "")
}

/// [`download_once`] with `extra` agent configuration (TOML tables).
pub fn download_once_with(
    agent_bin: &Path,
    server: &RunningServer,
    dir: &Path,
    device: &str,
    package: &str,
    limit: Duration,
    extra: &str,
) -> anyhow::Result<Vec<Arrival>> {
    let setup =
        crate::agent::AgentSetup::new(agent_bin, dir, &server.endpoint_url(), device, extra)?;
    let agent = setup.start()?;
    let got = wait_message(server, device, package, 11031, limit).with_context(|| setup.log())?;
    agent.stop()?;
    Ok(got)
}

/// The time between the first `from` and the first `to` message, in seconds.
pub fn interval_s(arrivals: &[Arrival], from: u32, to: u32) -> anyhow::Result<f64> {
    let at = |id: u32| {
        arrivals
            .iter()
            .find(|a| a.message_id == id)
            .map(|a| a.at_ms)
            .with_context(|| format!("no {id} received"))
    };
    Ok((at(to)? - at(from)?) as f64 / 1000.0)
}

/// `2025-01-15T09:30:00.123Z` to milliseconds since the epoch.
fn rfc3339_ms(s: &str) -> Option<i64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, ms) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>());
    let (h, min, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + min) * 60_000 + sec * 1000 + ms.parse::<i64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_to_epoch_ms() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            rfc3339_ms("2025-01-15T09:30:00.123Z"),
            Some(1_736_933_400_123)
        );
        assert_eq!(
            rfc3339_ms("2000-03-01T00:00:01.005Z"),
            Some(951_868_801_005)
        );
    }
}
