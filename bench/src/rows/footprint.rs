//! P3 and P4: what the agent costs a small device at rest.

use std::time::Duration;

use crate::agent::AgentSetup;
use crate::ctx::Ctx;
use crate::report::{Baseline, Goal, Line, Row};
use crate::stats::Samples;

pub const P3: &str = "P3";
pub const P3_TITLE: &str = "resident memory of `dmagent run` idle";
pub const P4: &str = "P4";
pub const P4_TITLE: &str = "stripped release binary of `dmagent`";

const MB: f64 = 1e6;

/// Idle RSS: the daemon started on a fresh state directory, its first poll
/// answered by a server with nothing assigned, one `status` request served,
/// then sampled after it settles. One fresh daemon per run.
pub fn p3(ctx: &Ctx) -> anyhow::Result<Row> {
    let mut row = Row::new(P3, P3_TITLE);
    let dir = ctx.scratch("p3")?;
    let catalog = crate::workload::Catalog::create(&dir.join("catalog"), &[])?;
    let server = crate::workload::start_server(&catalog, &dir.join("server"), 1)?;
    let mut rss = Samples::new("MB");
    let mut threads = Vec::new();
    for i in 0..ctx.runs {
        let setup = AgentSetup::new(
            &ctx.agent_bin(),
            &dir.join(format!("agent-{i}")),
            &server.endpoint_url(),
            &format!("IDLE-{i}"),
            "",
        )?;
        let agent = setup.start()?;
        // The first poll goes out at start; wait for it to be answered.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while server
            .state()
            .device(&format!("IDLE-{i}"))
            .ok()
            .flatten()
            .is_none()
        {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "IDLE-{i} never polled"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = setup.status();
        let kib = agent.idle_rss_kib(5, Duration::from_millis(400))?;
        rss.push(kib as f64 * 1024.0 / MB);
        threads.push(
            std::fs::read_dir(format!("/proc/{}/task", agent.pid()))
                .map(|d| d.count())
                .unwrap_or(0),
        );
        agent.stop()?;
    }
    let median = rss.median();
    row.lines.push(Line {
        what: "VmRSS, actors up, database open".into(),
        measured: rss,
        baseline: Baseline::Reference(
            "published: minimal Rust poller 4.1 MB; rauc-hawkbit-updater 13 MB; Mender 37 MB"
                .into(),
        ),
        result: median,
        result_unit: " MB",
        goal: Goal::AtMost(6.0),
    });
    row.notes.push(format!(
        "Threads of the idle daemon: {threads:?}. Each run starts a fresh daemon, waits for its \
         first poll to be answered and one `dmagent status` to be served, then takes the median \
         of 5 VmRSS samples 400 ms apart. `scripts/footprint.sh` splits the figure into \
         file-backed and anonymous pages."
    ));
    Ok(row)
}

/// The stripped release binary, as built by `bench/run` (opt-level "s",
/// fat LTO, one codegen unit, strip).
pub fn p4(ctx: &Ctx) -> anyhow::Result<Row> {
    let mut row = Row::new(P4, P4_TITLE);
    let bytes = std::fs::metadata(ctx.agent_bin())?.len();
    let mb = bytes as f64 / MB;
    row.lines.push(Line {
        what: "target/release/dmagent".into(),
        measured: Samples::of("MB", [mb]),
        baseline: Baseline::Reference(
            "published: minimal Rust poller 3.1 MB; thin-edge.io 3.6–4.7 MB; Mender 10 MB".into(),
        ),
        result: mb,
        result_unit: " MB",
        goal: Goal::AtMost(5.0),
    });
    row.notes.push(format!(
        "{bytes} bytes. A build is deterministic, so this is one measurement, not a median."
    ));
    Ok(row)
}
