//! P5: what an interrupted download costs in bytes fetched twice.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use dm_server::Faults;

use crate::agent::AgentSetup;
use crate::ctx::Ctx;
use crate::nginx::Nginx;
use crate::report::{Baseline, Goal, Line, Row};
use crate::stats::Samples;
use crate::workload::{self, Arrival, Catalog, PackageDef};

pub const P5: &str = "P5";
pub const P5_TITLE: &str = "bytes fetched again after an interruption";

const MIB: u64 = 1 << 20;
const KIB: f64 = 1024.0;
const SIZE: u64 = 8 * MIB;
const LIMIT: Duration = Duration::from_secs(120);

/// The `Offset` of the 11030 that says the download resumes.
fn resume_offset(got: &[Arrival]) -> Option<u64> {
    got.iter()
        .filter(|a| a.message_id == 11030)
        .filter(|a| {
            a.parameters
                .iter()
                .any(|(n, v)| n == "Resume" && v == "true")
        })
        .find_map(|a| {
            a.parameters
                .iter()
                .find(|(n, _)| n == "Offset")
                .and_then(|(_, v)| v.parse().ok())
        })
}

/// Body bytes nginx sent, summed over its access log (`combined` format),
/// and the number of requests logged.
fn nginx_body_bytes(log: &std::path::Path) -> anyhow::Result<(u64, usize)> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let mut total = 0;
    for line in text.lines() {
        // ... "GET /x HTTP/1.1" 206 12345 "-" "agent"
        let fields = line.split('"').nth(2).unwrap_or_default();
        let bytes = fields.split_whitespace().nth(1).unwrap_or("0");
        total += bytes.parse::<u64>().unwrap_or(0);
    }
    Ok((total, text.lines().count()))
}

/// A cut connection (dm-server's fault injection closes the first download
/// of each run mid-body) and a `kill -9` of the daemon mid-download (nginx,
/// rate-limited so the kill lands mid-body, serves the package and logs
/// every byte it sent). Fetched again = bytes the server sent − package size.
pub fn p5(ctx: &Ctx) -> anyhow::Result<Row> {
    let mut row = Row::new(P5, P5_TITLE);
    let dir = ctx.scratch("p5")?;
    let files = dir.join("catalog/files");
    workload::write_payload(&files.join("bench-8m.bin"), SIZE)?;
    let nginx_dir = dir.join("nginx");
    let access = nginx_dir.join("access.log");
    let nginx = Nginx::start(
        &nginx_dir,
        &files,
        1,
        &format!("    location / {{ access_log {} combined; limit_rate 2m; sendfile off; output_buffers 2 32k; }}", access.display()),
    )?;
    let defs = [
        PackageDef {
            file: "bench-8m.bin".into(),
            ..PackageDef::new("BENCH-CUT", SIZE)
        },
        PackageDef {
            file: "bench-8m.bin".into(),
            external_base_url: Some(nginx.url("")),
            ..PackageDef::new("BENCH-KILL", SIZE)
        },
    ];
    let mut catalog = Catalog::create(&dir.join("catalog"), &defs)?;
    let server = workload::start_server(&catalog, &dir.join("server"), 2)?;

    let mut cut = Samples::new("KiB");
    let mut cut_offsets = Vec::new();
    for i in 0..ctx.runs {
        let device = format!("P5-CUT-{i}");
        catalog.assign(&server, &device, &["BENCH-CUT"])?;
        // Somewhere in the middle, not on a chunk boundary.
        let cut_at = 3 * MIB + 4321 + i as u64 * 77_777;
        server.faults().set(Faults {
            cut_after_bytes: Some(cut_at),
            cut_count: Some(1),
            ..Faults::default()
        });
        let before = server.bytes_served();
        let got = workload::download_once(
            &ctx.agent_bin(),
            &server,
            &dir.join(&device),
            &device,
            "BENCH-CUT",
            LIMIT,
        )?;
        let served = server.bytes_served() - before;
        cut.push(served.saturating_sub(SIZE) as f64 / KIB);
        cut_offsets.push((cut_at, resume_offset(&got)));
        eprintln!(
            "   cut run {i}: cut at {cut_at}, served {served}, resumed at {:?}",
            resume_offset(&got)
        );
    }
    server.faults().set(Faults::default());
    let result = cut.median();
    row.lines.push(Line {
        what: "connection cut mid-body, then resumed".into(),
        measured: cut,
        baseline: Baseline::Reference("0 bytes".into()),
        result,
        result_unit: " KiB",
        goal: Goal::AtMost(64.0),
    });

    let mut kill = Samples::new("KiB");
    let mut kill_detail = Vec::new();
    for i in 0..ctx.runs {
        let device = format!("P5-KILL-{i}");
        catalog.assign(&server, &device, &["BENCH-KILL"])?;
        std::fs::write(&access, "")?;
        let setup = AgentSetup::new(
            &ctx.agent_bin(),
            &dir.join(&device),
            &server.endpoint_url(),
            &device,
            "",
        )?;
        let agent = setup.start()?;
        let deadline = Instant::now() + LIMIT;
        let target = 3 * MIB + i as u64 * 300_000;
        loop {
            let done = setup
                .status()
                .and_then(|s| {
                    s["packages"]
                        .as_array()?
                        .iter()
                        .find(|p| p["id"] == "BENCH-KILL")?["bytes_done"]
                        .as_u64()
                })
                .unwrap_or(0);
            if done >= target {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{device} never reached {target} bytes; log:\n{}",
                    setup.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        agent.kill_9();
        let partial = setup.root().join("packages/bench-kill/~PD-BENCH-KILL.part");
        let received = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        let agent = setup.start()?;
        let got = workload::wait_message(&server, &device, "BENCH-KILL", 11031, LIMIT)
            .with_context(|| setup.log())?;
        agent.stop()?;
        // nginx logs a request when it ends: the killed one when its next
        // paced write fails, so its line may trail the restarted one.
        let deadline = Instant::now() + Duration::from_secs(10);
        let sent = loop {
            let (sent, requests) = nginx_body_bytes(&access)?;
            if requests >= 2 {
                break sent;
            }
            if Instant::now() > deadline {
                bail!("nginx logged {requests} requests for {device}, expected the killed one and the resumed one");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let offset = resume_offset(&got);
        if offset != Some(received) {
            row.notes.push(format!(
                "{device}: wrote {received} bytes before the kill but resumed at {offset:?}"
            ));
        }
        kill.push(sent.saturating_sub(SIZE) as f64 / KIB);
        kill_detail.push(format!(
            "written {received}, resumed at {offset:?}, nginx sent {sent}"
        ));
        eprintln!(
            "   kill run {i}: {}",
            kill_detail.last().map_or("", String::as_str)
        );
    }
    let result = kill.median();
    row.lines.push(Line {
        what: "`kill -9` of the daemon mid-body, then restarted".into(),
        measured: kill,
        baseline: Baseline::Reference("0 bytes".into()),
        result,
        result_unit: " KiB",
        goal: Goal::AtMost(1024.0),
    });
    row.notes.push(format!(
        "An 8 MiB package per run. Cut: dm-server closes the first download after the byte \
         shown, the agent resumes with a Range request; fetched again = bytes dm-server sent − \
         8 MiB. Cut offsets and the agent's resume offsets: {cut_offsets:?}."
    ));
    row.notes.push(format!(
        "Kill: nginx serves the package at 2 MiB/s (`limit_rate`) so the kill lands mid-body; \
         the daemon is killed once its status shows ≥ 3 MiB, restarted on the same state \
         directory, and resumes; fetched again = body bytes nginx logged − 8 MiB. Per run: {}.",
        kill_detail.join("; ")
    ));
    Ok(row)
}
