//! Checks for single values: what a URL, a device id, an interface pattern or
//! a log filter must look like. Each returns the reason for a refusal, so the
//! schema can attribute it to a file and key.

use std::path::Path;

/// Longest device id: what the protocol's `ID` element and the
/// `X-Device-*` headers are specified to carry.
pub const MAX_DEVICE_ID_LEN: usize = 299;

/// An `http` or `https` URL with a host; no credentials (they would end up in
/// logs and `check-config --print`; use a client certificate instead).
pub fn check_server_url(url: &str) -> Result<(), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL must not contain spaces or control characters".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("not a URL: expected http://HOST/... or https://HOST/...".into());
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "scheme {scheme:?} is not supported; use http or https"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("credentials in the URL are not allowed; use tls.client_cert".into());
    }
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("port {port:?} is not a number from 1 to 65535")),
        }
    }
    if !host.starts_with('[') {
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.len() > 253 || !host.split('.').all(valid_label) {
            return Err(format!("{host:?} is not a valid host name"));
        }
    }
    Ok(())
}

/// `host[:port]`, with `[v6]` hosts.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = authority.strip_prefix('[') {
        let Some(end) = inner.find(']') else {
            return Err("unclosed '[' in the host".into());
        };
        let addr = &inner[..end];
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{addr:?} is not an IPv6 address"));
        }
        let after = &inner[end + 1..];
        let host = &authority[..end + 2];
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err("unexpected text after the IPv6 address".into()),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// Paths in the configuration are absolute: the agent runs from any working
/// directory, and a relative path would silently mean something else.
pub fn check_absolute(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if !Path::new(path).is_absolute() {
        return Err(format!("{path:?} is not an absolute path"));
    }
    Ok(())
}

/// Non-empty, at most [`MAX_DEVICE_ID_LEN`] characters, printable ASCII
/// (it goes into XML and HTTP headers), no surrounding spaces.
pub fn check_device_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the device id is empty".into());
    }
    if id.len() > MAX_DEVICE_ID_LEN {
        return Err(format!(
            "the device id is {} characters long; at most {MAX_DEVICE_ID_LEN} are allowed",
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!(
            "the device id contains {c:?}; only printable ASCII is allowed"
        ));
    }
    if id.trim() != id {
        return Err("the device id has leading or trailing spaces".into());
    }
    Ok(())
}

/// An interface-name pattern: non-empty, no spaces or `/`, `*` as the only
/// wildcard.
pub fn check_interface_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("empty interface pattern".into());
    }
    if pattern
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(format!(
            "{pattern:?} is not an interface name pattern (no spaces or '/')"
        ));
    }
    if pattern.contains(['?', '[', ']']) {
        return Err(format!("{pattern:?}: only '*' is supported as a wildcard"));
    }
    Ok(())
}

/// A `tracing` filter as `tracing-subscriber`'s `Targets` reads it
/// (`info,dmagent=debug`), with one extra rule: a directive without `=` must
/// be a level. `Targets` would take `"inof"` as a target name and quietly log
/// almost nothing.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    if filter.trim().is_empty() {
        return Err("empty log filter; use e.g. \"info\"".into());
    }
    for directive in filter.split(',').map(str::trim) {
        if !directive.contains('=') && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{directive:?} is not a level (trace, debug, info, warn, error, off); \
                 for a target write TARGET=LEVEL"
            ));
        }
    }
    filter
        .parse::<tracing_subscriber::filter::Targets>()
        .map(drop)
        .map_err(|e| format!("{filter:?} is not a valid log filter: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for ok in [
            "http://dm.example.com/devicemgmt/server.aspx",
            "https://dm.example.com:8443/",
            "HTTPS://localhost",
            "http://127.0.0.1:8080/x?y#z",
            "https://[::1]:8443/dm",
        ] {
            assert_eq!(check_server_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "dm.example.com",
            "ftp://dm.example.com/",
            "http:///path",
            "http://:80/",
            "http://host:0/",
            "http://host:99999/",
            "http://user:pw@host/",
            "http://bad host/",
            "https://exa mple.com",
            "http://[zz]/",
            "http://-bad-.com/",
        ] {
            assert!(check_server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn device_ids() {
        assert!(check_device_id("ABC-123 x").is_ok());
        assert!(check_device_id(&"x".repeat(299)).is_ok());
        assert!(check_device_id(&"x".repeat(300)).is_err());
        assert!(check_device_id("").is_err());
        assert!(check_device_id("tab\there").is_err());
        assert!(check_device_id("é").is_err());
        assert!(check_device_id(" padded").is_err());
    }

    #[test]
    fn log_filters() {
        assert!(check_log_filter("info").is_ok());
        assert!(check_log_filter("dmagent=debug,actix=warn").is_ok());
        assert!(check_log_filter("loud").is_err());
        assert!(check_log_filter("").is_err());
    }
}
