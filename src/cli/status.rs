//! Text rendering of the status report for a terminal.

use std::fmt::Write;

use crate::control::StatusReport;

/// Renders `report` as aligned tables.
pub fn render(report: &StatusReport) -> String {
    let mut out = String::new();
    let now = report.generated_unix;
    let _ = writeln!(
        out,
        "dmagent {}  device {}  server {}",
        report.agent_version,
        report.device_id.as_deref().unwrap_or("(unknown)"),
        report.server_url
    );
    let _ = writeln!(
        out,
        "database {} ({})",
        report.database,
        if report.daemon_running {
            "daemon running"
        } else {
            "daemon not running"
        }
    );
    if let Some(error) = &report.database_error {
        let _ = writeln!(
            out,
            "DATABASE WRITES FAILING (retried; nothing of a failed write was kept): {error}"
        );
    }
    let _ = writeln!(out, "links up: {}", report.links);
    if !report.trust.is_empty() {
        let _ = writeln!(out, "signed updates: {}", report.trust);
    }
    if let Some(since) = report.server.unreachable_since_unix {
        let _ = writeln!(out, "server unreachable since {}", relative(since, now));
    }
    let server = &report.server;
    let _ = writeln!(
        out,
        "server values: timestamp {}, auth token {}, client settings version {}",
        server.timestamp.as_deref().unwrap_or("(none)"),
        if server.auth_token_held {
            "held"
        } else {
            "none"
        },
        server
            .client_settings_version
            .as_deref()
            .unwrap_or("(none)")
    );

    out.push_str("\nPACKAGES\n");
    let rows: Vec<Vec<String>> = report
        .packages
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.name.clone().unwrap_or_default(),
                if p.required {
                    "required".into()
                } else if p.accepted {
                    "optional, accepted".into()
                } else {
                    "optional".into()
                },
                p.state.clone(),
                progress(p.bytes_done, p.bytes_total),
                p.next_step.clone(),
                p.last_outcome.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "ID",
            "NAME",
            "KIND",
            "STATE",
            "PROGRESS",
            "NEXT STEP",
            "LAST OUTCOME",
        ],
        &rows,
    );

    out.push_str("\nTASKS\n");
    let rows: Vec<Vec<String>> = report
        .tasks
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                relative(t.next_due_unix, now),
                t.period_secs.map(span).unwrap_or_else(|| "once".into()),
                t.attempts.to_string(),
                t.waiting.clone().unwrap_or_else(|| "runs now".into()),
                t.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "TASK",
            "DUE",
            "EVERY",
            "RETRIES",
            "WAITING BECAUSE",
            "LAST ERROR",
        ],
        &rows,
    );

    out.push_str("\nOUTBOX\n");
    let rows: Vec<Vec<String>> = report
        .outbox
        .iter()
        .map(|o| {
            vec![
                o.seq.to_string(),
                relative(o.queued_unix, now),
                match o.refused {
                    0 => o.summary.clone(),
                    1 => format!("{} (refused by the server once)", o.summary),
                    n => format!("{} (refused by the server {n} times)", o.summary),
                },
            ]
        })
        .collect();
    table(&mut out, &["SEQ", "QUEUED", "ITEM"], &rows);
    out
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(" ");
        for (cell, w) in cells.zip(&widths) {
            let _ = write!(text, " {cell:<w$}");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(out, &mut header.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

fn progress(done: Option<u64>, total: Option<u64>) -> String {
    match (done, total) {
        (Some(done), Some(total)) if total > 0 => {
            format!(
                "{} / {} ({}%)",
                bytes(done),
                bytes(total),
                done.saturating_mul(100) / total
            )
        }
        (Some(done), _) => bytes(done),
        (None, Some(total)) => format!("0 / {}", bytes(total)),
        (None, None) => String::new(),
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `in 5m` / `3m ago` / `now`.
fn relative(at: u64, now: u64) -> String {
    match at.cmp(&now) {
        std::cmp::Ordering::Equal => "now".into(),
        std::cmp::Ordering::Greater => format!("in {}", span(at - now)),
        std::cmp::Ordering::Less => format!("{} ago", span(now - at)),
    }
}

fn span(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(42), "42s");
        assert_eq!(span(180), "3m00s");
        assert_eq!(span(3600), "1h00m");
        assert_eq!(span(90_000), "1d01h");
        assert_eq!(relative(100, 100), "now");
        assert_eq!(relative(160, 100), "in 1m00s");
        assert_eq!(relative(40, 100), "1m00s ago");
    }

    #[test]
    fn progress_shows_percent() {
        assert_eq!(progress(Some(512), Some(1024)), "512 B / 1.0 KiB (50%)");
        assert_eq!(progress(None, Some(2048)), "0 / 2.0 KiB");
        assert_eq!(progress(None, None), "");
    }
}
