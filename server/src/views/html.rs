//! Server-side HTML. Every value from a device or the catalog goes through
//! [`esc`].

use std::fmt::Write;

use super::model::{DeviceDetail, DeviceSummary};
use crate::http::encode_segment;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#eef}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}\
.err{background:#fdd;border:1px solid #c66;padding:0.5em}\
.s-installed{color:#070}.s-failed,.s-command-failed{color:#b00}\
pre{background:#f6f6f6;padding:0.5em;max-height:30em;overflow:auto}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body>{body}</body></html>\n",
        esc(title)
    )
}

fn opt(s: Option<&str>) -> String {
    esc(s.unwrap_or("—"))
}

/// The device list.
pub fn index(devices: &[DeviceSummary], catalog_error: Option<&str>) -> String {
    let mut b = String::from("<h1>dm-server: devices</h1>");
    if let Some(e) = catalog_error {
        let _ = write!(
            b,
            "<p class=\"err\">The last catalog reload failed; the previous catalog is in force: {}</p>",
            esc(e)
        );
    }
    if devices.is_empty() {
        b.push_str("<p>No device has polled yet.</p>");
    } else {
        b.push_str("<table><tr><th>ID</th><th>Name</th><th>Platform</th><th>Last seen</th><th>Polls</th></tr>");
        for d in devices {
            let _ = write!(
                b,
                "<tr><td><a href=\"/devices/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&encode_segment(&d.id)),
                esc(&d.id),
                opt(d.name.as_deref()),
                opt(d.platform.as_deref()),
                esc(&d.last_seen),
                d.poll_count
            );
        }
        b.push_str("</table>");
    }
    b.push_str("<p><a href=\"/api/devices\">JSON</a></p>");
    page("dm-server: devices", &b)
}

/// One device.
pub fn device(d: &DeviceDetail) -> String {
    let dev = &d.device;
    let mut b = String::new();
    let _ = write!(
        b,
        "<p><a href=\"/\">&larr; devices</a></p><h1>Device {}</h1>",
        esc(&dev.id)
    );
    b.push_str("<table>");
    let mut row = |k: &str, v: String| {
        let _ = write!(b, "<tr><th>{}</th><td>{v}</td></tr>", esc(k));
    };
    let ident = dev.poll.as_ref().map(|p| &p.identification);
    row("Name", opt(dev.name()));
    row("Platform", opt(dev.platform()));
    row("Processor", opt(ident.and_then(|i| i.processor.as_deref())));
    row("User", opt(ident.and_then(|i| i.user_name.as_deref())));
    row("Domain", opt(ident.and_then(|i| i.domain.as_deref())));
    let adapters = ident
        .map(|i| {
            i.network_adapters
                .iter()
                .map(|a| {
                    format!(
                        "{} / {} / {}",
                        opt(a.ip_address.as_deref()),
                        opt(a.ip_subnet.as_deref()),
                        opt(a.mac.as_deref())
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>")
        })
        .unwrap_or_default();
    row("Network", adapters);
    row("Client version", esc(&dev.headers.client_version));
    row("First seen", esc(&dev.first_seen));
    row("Last seen", esc(&dev.last_seen));
    row("Polls", dev.poll_count.to_string());
    row("Remote address", opt(dev.remote_addr.as_deref()));
    b.push_str("</table>");

    b.push_str("<h2>Packages</h2>");
    if d.packages.is_empty() {
        b.push_str("<p>None assigned.</p>");
    } else {
        b.push_str("<table><tr><th>Package</th><th>Name</th><th>Assigned</th><th>State</th><th>Updated</th></tr>");
        for p in &d.packages {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"s-{}\">{}</td><td>{}</td></tr>",
                esc(&p.id),
                opt(p.name.as_deref()),
                if p.assigned { "yes" } else { "no" },
                esc(&p.state.replace(' ', "-")),
                esc(&p.state),
                opt(p.updated_at.as_deref())
            );
        }
        b.push_str("</table>");
    }

    b.push_str("<h2>Status history</h2>");
    if d.status.is_empty() {
        b.push_str("<p>No status messages.</p>");
    } else {
        b.push_str("<table><tr><th>Received</th><th>Package</th><th>Message</th><th>Device time</th><th>Parameters</th></tr>");
        for s in d.status.iter().rev() {
            let params = s
                .parameters
                .iter()
                .map(|p| format!("{}={}", esc(&p.name), esc(&p.value)))
                .collect::<Vec<_>>()
                .join("<br>");
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{params}</td></tr>",
                esc(&s.received_at),
                esc(&s.package_id),
                s.message_id,
                esc(&super::package_state_label(s.message_id)),
                esc(&s.timestamp)
            );
        }
        b.push_str("</table>");
    }

    b.push_str("<h2>Inventories</h2>");
    if d.inventories.is_empty() {
        b.push_str("<p>None received.</p>");
    }
    for inv in &d.inventories {
        let json = serde_json::to_string_pretty(&inv.document).unwrap_or_default();
        let _ = write!(
            b,
            "<h3>{} inventory, received {}</h3><pre>{}</pre>",
            esc(&inv.kind),
            esc(&inv.received_at),
            esc(&json)
        );
    }

    b.push_str("<h2>Collected files</h2>");
    if d.files.is_empty() {
        b.push_str("<p>None received.</p>");
    } else {
        b.push_str("<table><tr><th>Device path</th><th>Stored as</th><th>Size</th><th>SHA-256</th><th>Received</th></tr>");
        for f in &d.files {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&f.original_path),
                esc(&f.stored_path),
                f.size,
                esc(&f.sha256),
                esc(&f.received_at)
            );
        }
        b.push_str("</table>");
    }
    let _ = write!(
        b,
        "<p><a href=\"/api/devices/{}\">JSON</a></p>",
        esc(&encode_segment(&dev.id))
    );
    page(&format!("dm-server: {}", dev.id), &b)
}
