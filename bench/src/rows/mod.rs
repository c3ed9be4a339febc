//! The rows of the suite, one module per concern.

use crate::ctx::Ctx;
use crate::report::Row;

mod decode;
mod download;
mod fleet;
mod footprint;
mod resume;
mod server;
mod startup;
mod throttle;

/// A row's measurement.
pub type Measure = fn(&Ctx) -> anyhow::Result<Row>;

/// Every row, in report order: ID, title, measurement.
pub const ALL: &[(&str, &str, Measure)] = &[
    (download::P1, download::P1_TITLE, download::p1),
    (download::P2, download::P2_TITLE, download::p2),
    (footprint::P3, footprint::P3_TITLE, footprint::p3),
    (footprint::P4, footprint::P4_TITLE, footprint::p4),
    (resume::P5, resume::P5_TITLE, resume::p5),
    (throttle::P6, throttle::P6_TITLE, throttle::p6),
    (decode::P7, decode::P7_TITLE, decode::p7),
    (server::P8, server::P8_TITLE, server::p8),
    (startup::P9, startup::P9_TITLE, startup::p9),
    (startup::P10, startup::P10_TITLE, startup::p10),
    (fleet::P11, fleet::P11_TITLE, fleet::p11),
];

/// Writes P7's client database of 10,000 package records to `path`, which
/// must not exist yet (`dm-bench --client-db`).
pub fn write_client_database(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    anyhow::ensure!(!path.exists(), "{} exists already", path.display());
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let scratch = tempfile::tempdir_in(parent)
        .with_context(|| format!("making a scratch directory in {}", parent.display()))?;
    let made = scratch.path().join("records.redb");
    decode::client_database(&made)?;
    std::fs::rename(&made, path)
        .with_context(|| format!("moving the database to {}", path.display()))
}
