//! P9 and P10: what the agent costs at boot and while it waits.
//!
//! P9 times `dmagent run` from `spawn` to the first byte of its first poll
//! arriving at a listener, the way a device that just booted reaches its
//! server; `true` spawned the same way is the floor (fork, exec, exit).
//! P10 reads an idle daemon's CPU time from `/proc` over ten minutes: with no
//! work due it should sleep in the kernel, so anything above zero is a timer
//! that wakes it for nothing.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::agent::{Agent, AgentSetup};
use crate::ctx::Ctx;
use crate::report::{Baseline, Goal, Line, Row};
use crate::stats::{fmt_num, Samples};

pub const P9: &str = "P9";
pub const P9_TITLE: &str = "start-up of `dmagent run` to its first poll sent";
pub const P10: &str = "P10";
pub const P10_TITLE: &str = "CPU time of an idle `dmagent run` over 10 minutes";

/// How long P10 watches (`DM_BENCH_IDLE_SECS` shortens it for a quick look;
/// the report then says so).
const IDLE: Duration = Duration::from_secs(600);

/// A listener that notes when each request's first byte arrives and answers
/// 503 with a long `Retry-After`, so the agent does nothing more.
pub(super) struct FirstPoll {
    pub(super) url: String,
    arrivals: mpsc::Receiver<Instant>,
}

impl FirstPoll {
    pub(super) fn start() -> anyhow::Result<FirstPoll> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the P9 listener")?;
        let url = format!("http://{}/devicemgmt/server.aspx", listener.local_addr()?);
        let (tx, arrivals) = mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let tx = tx.clone();
                std::thread::spawn(move || answer(conn, &tx));
            }
        });
        Ok(FirstPoll { url, arrivals })
    }

    /// Forget arrivals of earlier runs.
    pub(super) fn clear(&self) {
        while self.arrivals.try_recv().is_ok() {}
    }

    pub(super) fn wait(&self, agent: &Agent, setup: &AgentSetup) -> anyhow::Result<Instant> {
        self.arrivals
            .recv_timeout(Duration::from_secs(30))
            .with_context(|| {
                format!(
                    "dmagent (pid {}) sent no poll within 30 s; its log:\n{}",
                    agent.pid(),
                    setup.log()
                )
            })
    }
}

fn answer(mut conn: TcpStream, tx: &mpsc::Sender<Instant>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    let mut first = true;
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            return;
        }
        if first {
            let _ = tx.send(Instant::now());
            first = false;
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let _ = conn.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3600\r\n\
          Content-Length: 0\r\nConnection: close\r\n\r\n",
    );
}

/// Milliseconds from spawn to the first poll, one fresh daemon on `setup`.
fn time_to_first_poll(listener: &FirstPoll, setup: &AgentSetup) -> anyhow::Result<f64> {
    listener.clear();
    let t0 = Instant::now();
    let agent = setup.spawn()?;
    let arrived = listener.wait(&agent, setup)?;
    agent.kill_9();
    Ok(arrived.duration_since(t0).as_secs_f64() * 1e3)
}

fn floor_ms() -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let st = Command::new("true").status().context("running true")?;
    if !st.success() {
        bail!("true failed: {st}");
    }
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

pub fn p9(ctx: &Ctx) -> anyhow::Result<Row> {
    let mut row = Row::new(P9, P9_TITLE);
    let dir = ctx.scratch("p9")?;
    let listener = FirstPoll::start()?;
    // One database of 10,000 records, copied under each run's state
    // directory (a daemon changes the one it runs on).
    let records = dir.join("records.redb");
    super::decode::client_database(&records)?;
    let db_bytes = std::fs::metadata(&records)?.len();

    let mut fresh = Samples::new("ms");
    let mut stored = Samples::new("ms");
    let mut floor = Samples::new("ms");
    // A first start warms the page cache with the binary, as at every boot
    // but the first after an update.
    let warm = AgentSetup::new(&ctx.agent_bin(), &dir.join("warm"), &listener.url, "P9", "")?;
    time_to_first_poll(&listener, &warm)?;
    for i in 0..ctx.runs {
        floor.push(floor_ms()?);
        let setup = AgentSetup::new(
            &ctx.agent_bin(),
            &dir.join(format!("fresh-{i}")),
            &listener.url,
            &format!("P9-FRESH-{i}"),
            "",
        )?;
        fresh.push(time_to_first_poll(&listener, &setup)?);
        let setup = AgentSetup::new(
            &ctx.agent_bin(),
            &dir.join(format!("stored-{i}")),
            &listener.url,
            &format!("P9-STORED-{i}"),
            "",
        )?;
        copy_database(&records, &setup.database())?;
        stored.push(time_to_first_poll(&listener, &setup)?);
    }
    let floor_median = floor.median();
    for (what, samples) in [
        ("fresh state directory", fresh),
        ("on a client database of 10,000 package records", stored),
    ] {
        let result = samples.median() - floor_median;
        row.lines.push(Line {
            what: what.into(),
            measured: samples,
            baseline: Baseline::Measured {
                what: "`true`, spawned and waited for".into(),
                samples: floor.clone(),
            },
            result,
            result_unit: " ms above the floor",
            goal: Goal::AtMost(100.0),
        });
    }
    row.notes.push(format!(
        "From `spawn` of the release `dmagent run` to the first byte of its first DevicePoll \
         arriving at a loopback listener (which answers 503 with `Retry-After: 3600`); the \
         daemon is then killed. The result is the median minus the median of `true`, spawned \
         the same way in the same run. The 10,000-record database is P7's ({} bytes), copied \
         under each run's state directory; it holds no poll task, so the daemon polls at \
         once, as after a first boot. One start before the runs warms the page cache. The \
         goal, 100 ms, is a tenth of a second from the agent's start to its server hearing \
         of the device.",
        fmt_num(db_bytes as f64)
    ));
    Ok(row)
}

fn copy_database(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// utime + stime of `pid` in clock ticks (fields 14 and 15 of
/// `/proc/PID/stat`, after the parenthesised command name).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("no ')' in /proc/PID/stat")?;
    // After ')': state is field 3, so utime (14) is index 11 here.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("field {} of /proc/{pid}/stat", i + 3))
    };
    Ok(n(11)? + n(12)?)
}

/// Run time of every thread of `pid` in nanoseconds (`/proc/PID/task/*/schedstat`,
/// first field), and their context switches (voluntary + involuntary), which
/// count wake-ups.
fn threads_run_ns_and_switches(pid: u32) -> anyhow::Result<(u64, u64)> {
    let mut ns = 0;
    let mut switches = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path();
        if let Ok(s) = std::fs::read_to_string(path.join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if let Ok(s) = std::fs::read_to_string(path.join("status")) {
            for l in s.lines() {
                if let Some(v) = l
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    switches += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    Ok((ns, switches))
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

pub fn p10(ctx: &Ctx) -> anyhow::Result<Row> {
    let mut row = Row::new(P10, P10_TITLE);
    let dir = ctx.scratch("p10")?;
    let idle = std::env::var("DM_BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(IDLE, Duration::from_secs);
    let catalog = crate::workload::Catalog::create(&dir.join("catalog"), &[])?;
    let server = crate::workload::start_server(&catalog, &dir.join("server"), 1)?;
    // The runs watch side by side: idle daemons do not compete, and five
    // sequential ten-minute watches would make this row alone take an hour.
    let mut agents = Vec::new();
    for i in 0..ctx.runs {
        let id = format!("P10-IDLE-{i}");
        let setup = AgentSetup::new(
            &ctx.agent_bin(),
            &dir.join(format!("agent-{i}")),
            &server.endpoint_url(),
            &id,
            "",
        )?;
        let agent = setup.start()?;
        crate::workload::wait_polled(&server, &id, 0)?;
        agents.push((setup, agent, id));
    }
    // Let the first poll's answer and the start-up work settle.
    std::thread::sleep(Duration::from_secs(5));
    let polls_before: Vec<u64> = agents
        .iter()
        .map(|(_, _, id)| crate::workload::polls(&server, id))
        .collect();
    let start: Vec<(u64, u64, u64)> = agents
        .iter()
        .map(|(_, a, _)| {
            let (ns, sw) = threads_run_ns_and_switches(a.pid())?;
            anyhow::Ok((cpu_ticks(a.pid())?, ns, sw))
        })
        .collect::<Result<_, _>>()?;
    let t0 = Instant::now();
    std::thread::sleep(idle);
    let wall = t0.elapsed().as_secs_f64();
    let hz = clock_ticks_per_second();
    let mut share = Samples::new("%");
    let mut run_ms = Vec::new();
    let mut wakeups = Vec::new();
    let mut polls = Vec::new();
    for (((setup, agent, id), (ticks0, ns0, sw0)), before) in
        agents.into_iter().zip(start).zip(polls_before)
    {
        let ticks = cpu_ticks(agent.pid())? - ticks0;
        let (ns, sw) = threads_run_ns_and_switches(agent.pid())?;
        let cpu_s = (ns - ns0) as f64 / 1e9;
        share.push(cpu_s / wall * 100.0);
        run_ms.push(format!("{} ms ({} ticks)", fmt_num(cpu_s * 1e3), ticks));
        wakeups.push(fmt_num((sw - sw0) as f64 / wall));
        polls.push(crate::workload::polls(&server, &id) - before);
        agent.stop().with_context(|| setup.log())?;
    }
    let result = share.median();
    row.lines.push(Line {
        what: format!("idle after its first poll, {} s", fmt_num(wall)),
        measured: share,
        baseline: Baseline::Reference("wall-clock time of the watch (100% = one core)".into()),
        result,
        result_unit: "% of one core",
        goal: Goal::AtMost(0.01),
    });
    row.notes.push(format!(
        "{} daemons on fresh state directories, started together against dm-server with \
         nothing assigned, watched side by side for {} s after their first poll was answered \
         and 5 s of settling. CPU time is the sum over the daemon's threads of \
         `/proc/PID/task/*/schedstat` (nanoseconds run); utime + stime from `/proc/PID/stat` \
         ({} ticks per second) as a cross-check. Per daemon: {}. Wake-ups per second \
         (voluntary and involuntary context switches of all threads): {}. Polls during the \
         watch: {:?} (the server's poll interval). The goal, 0.01% of one core, is 60 ms in \
         10 minutes.",
        ctx.runs,
        fmt_num(wall),
        hz,
        run_ms.join(", "),
        wakeups.join(", "),
        polls
    ));
    if idle != IDLE {
        row.notes.push(format!(
            "Watched {} s, not 600 s: DM_BENCH_IDLE_SECS was set.",
            idle.as_secs()
        ));
    }
    Ok(row)
}
