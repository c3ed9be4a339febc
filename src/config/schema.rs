//! The schema: every known table and key, each key with a setter that checks
//! its value and writes it into [`Settings`].
//!
//! Walking a fragment's TOML tree against this schema finds every unknown key
//! (at any depth), wrong type and invalid value in one pass. A setter changes
//! the settings only when its value is valid, so the valid keys of each
//! fragment are merged key by key over the earlier layers (tables merge
//! deeply, arrays replace) and a bad key leaves the earlier value in place.

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};

use super::duration::{parse_duration, DURATION_FORMS};
use super::error::{ConfigError, ConfigErrorKind};
use super::links::LinkAssume;
use super::settings::{IdentitySource, LogFormat, Settings, Sha256AllowList};
use super::values;

/// Why a setter refused a value.
#[derive(Debug)]
pub(crate) struct Refusal {
    kind: ConfigErrorKind,
    message: String,
}

fn wrong_type(expected: &str, found: &Value) -> Refusal {
    Refusal {
        kind: ConfigErrorKind::Type,
        message: format!("expected {expected}, found {}", describe(found)),
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal {
        kind: ConfigErrorKind::Value,
        message: message.into(),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("string {s:?}"),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

type Setter = fn(&mut Settings, &Value) -> Result<(), Refusal>;

/// A node of the schema.
pub(crate) enum Node {
    /// A table and its known keys.
    Table(&'static [(&'static str, Node)]),
    /// A key with its setter.
    Leaf(Setter),
}

// ---- value readers --------------------------------------------------------

fn string(v: &Value) -> Result<&str, Refusal> {
    v.as_str().ok_or_else(|| wrong_type("a string", v))
}

fn boolean(v: &Value) -> Result<bool, Refusal> {
    v.as_bool().ok_or_else(|| wrong_type("true or false", v))
}

fn integer(v: &Value, min: u64, max: u64) -> Result<u64, Refusal> {
    let Value::Integer(i) = v else {
        return Err(wrong_type("an integer", v));
    };
    match u64::try_from(*i) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(format!("{i} is out of range ({min} to {max})"))),
    }
}

/// A duration of at least `min`: a string in any accepted form, an integer of
/// seconds, or a TOML local time (`01:00:00`).
fn duration(v: &Value, min: Duration) -> Result<Duration, Refusal> {
    let d = match v {
        Value::String(s) => parse_duration(s).map_err(|e| invalid(e.to_string()))?,
        Value::Integer(i) => u64::try_from(*i)
            .map(Duration::from_secs)
            .map_err(|_| invalid(format!("{i} is negative; a duration cannot be")))?,
        Value::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
            (None, Some(t), None) if t.nanosecond == 0 => Duration::from_secs(
                u64::from(t.hour) * 3600 + u64::from(t.minute) * 60 + u64::from(t.second),
            ),
            _ => return Err(wrong_type(&format!("a duration ({DURATION_FORMS})"), v)),
        },
        _ => return Err(wrong_type(&format!("a duration ({DURATION_FORMS})"), v)),
    };
    if d < min {
        return Err(invalid(format!(
            "{} is too short; the minimum is {}",
            super::duration::format_duration(d),
            super::duration::format_duration(min)
        )));
    }
    Ok(d)
}

fn absolute_path(v: &Value) -> Result<PathBuf, Refusal> {
    let s = string(v)?;
    values::check_absolute(s).map_err(invalid)?;
    Ok(PathBuf::from(s))
}

fn one_of<T: Copy>(v: &Value, names: &[(&str, T)]) -> Result<T, Refusal> {
    let s = string(v)?;
    names
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let choices: Vec<String> = names.iter().map(|(n, _)| format!("{n:?}")).collect();
            invalid(format!("{s:?} is not one of {}", choices.join(", ")))
        })
}

fn patterns(v: &Value) -> Result<Vec<String>, Refusal> {
    let Value::Array(items) = v else {
        return Err(wrong_type("an array of interface name patterns", v));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(p) = item else {
            return Err(wrong_type(&format!("a string at index {i}"), item));
        };
        values::check_interface_pattern(p).map_err(|m| invalid(format!("index {i}: {m}")))?;
        out.push(p.clone());
    }
    Ok(out)
}

fn sha256_hex(v: &Value, at: &str) -> Result<String, Refusal> {
    let Value::String(hex) = v else {
        return Err(wrong_type(&format!("a SHA-256 hex string {at}"), v));
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!(
            "{at}{}{hex:?} is not a SHA-256 digest (64 hex digits)",
            if at.is_empty() { "" } else { ": " }
        )));
    }
    Ok(hex.to_ascii_lowercase())
}

fn sha256_allow_list(v: &Value) -> Result<Sha256AllowList, Refusal> {
    match v {
        Value::Table(t) => {
            let mut map = std::collections::BTreeMap::new();
            for (file, digest) in t {
                if !file.ends_with(".so") || file.contains('/') {
                    return Err(invalid(format!(
                        "{file:?} is not a plugin file name (name.so)"
                    )));
                }
                map.insert(file.clone(), sha256_hex(digest, &format!("for {file:?}"))?);
            }
            Ok(Sha256AllowList::ByFile(map))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| sha256_hex(item, &format!("at index {i}")))
            .collect::<Result<_, _>>()
            .map(Sha256AllowList::AnyOf),
        other => Err(wrong_type(
            "a table { \"name.so\" = \"hex\" } or an array of hex digests",
            other,
        )),
    }
}

fn user_map(v: &Value) -> Result<std::collections::BTreeMap<String, String>, Refusal> {
    let Value::Table(t) = v else {
        return Err(wrong_type("a table { plugin = \"user\" }", v));
    };
    let mut map = std::collections::BTreeMap::new();
    for (plugin, user) in t {
        let Value::String(user) = user else {
            return Err(wrong_type(&format!("a user name for {plugin:?}"), user));
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !valid(plugin) || !valid(user) {
            return Err(invalid(format!(
                "{plugin:?} = {user:?}: plugin and user names are [A-Za-z0-9._-]+"
            )));
        }
        map.insert(plugin.clone(), user.clone());
    }
    Ok(map)
}

/// A point in time for a key window: a TOML datetime with a date (an offset
/// datetime, or a local one read as UTC) or a `"YYYY-MM-DD hh:mm:ss"` UTC
/// string. Unix seconds.
fn instant(v: &Value, key: &str) -> Result<i64, Refusal> {
    let civil = match v {
        Value::Datetime(dt) => {
            let (Some(date), time) = (dt.date, dt.time) else {
                return Err(invalid(format!("{key}: a datetime needs a date")));
            };
            let time = time.unwrap_or(toml::value::Time {
                hour: 0,
                minute: 0,
                second: 0,
                nanosecond: 0,
            });
            let civil = crate::protocol::CivilTime {
                year: date.year,
                month: date.month,
                day: date.day,
                hour: time.hour,
                minute: time.minute,
                second: time.second,
            };
            let offset = match dt.offset {
                Some(toml::value::Offset::Custom { minutes }) => i64::from(minutes) * 60,
                _ => 0,
            };
            return Ok(civil.to_unix() - offset);
        }
        Value::String(s) => s.parse::<crate::protocol::CivilTime>().map_err(|e| {
            invalid(format!(
                "{key}: {s:?} is not a time (YYYY-MM-DD hh:mm:ss, UTC): {e}"
            ))
        })?,
        other => return Err(wrong_type(&format!("a datetime for {key}"), other)),
    };
    Ok(civil.to_unix())
}

fn public_key(text: &str, at: &str) -> Result<crate::trust::PublicKey, Refusal> {
    crate::trust::PublicKey::parse(text).map_err(|e| invalid(format!("{at}: {e}")))
}

/// Reads a `.pub` file (an absolute path) at load time, so a missing or
/// malformed key file is a configuration error, not a refused update later.
fn key_file(v: &Value, at: &str) -> Result<crate::trust::PublicKey, Refusal> {
    let path = absolute_path(v).map_err(|r| invalid(format!("{at}: {}", r.message)))?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| invalid(format!("{at}: cannot read {}: {e}", path.display())))?;
    public_key(&text, &format!("{at} ({})", path.display()))
}

/// `trust.keys`: an array whose items are a base64 key, or a table
/// `{ key = "…" | file = "/abs.pub", id = "…", not_before = …, not_after = … }`.
fn trusted_keys(v: &Value) -> Result<Vec<crate::trust::TrustedKey>, Refusal> {
    let Value::Array(items) = v else {
        return Err(wrong_type("an array of keys", v));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("index {i}");
        let key = match item {
            Value::String(text) => crate::trust::TrustedKey {
                key: public_key(text, &at)?,
                not_before: None,
                not_after: None,
            },
            Value::Table(t) => {
                if let Some(unknown) = t.keys().find(|k| {
                    !["key", "file", "id", "not_before", "not_after"].contains(&k.as_str())
                }) {
                    return Err(Refusal {
                        kind: ConfigErrorKind::UnknownKey,
                        message: format!(
                            "{at}: unknown key {unknown:?}; known: key, file, id, not_before, not_after"
                        ),
                    });
                }
                let key = match (t.get("key"), t.get("file")) {
                    (Some(k), None) => public_key(string(k)?, &at)?,
                    (None, Some(f)) => key_file(f, &at)?,
                    _ => return Err(invalid(format!("{at}: set exactly one of key and file"))),
                };
                // An optional `id` states which key the image builder meant.
                if let Some(id) = t.get("id") {
                    let id = string(id)?;
                    if !id.eq_ignore_ascii_case(&key.id()) {
                        return Err(invalid(format!(
                            "{at}: the key's ID is {}, not {id:?}",
                            key.id()
                        )));
                    }
                }
                let when = |name: &str| {
                    t.get(name)
                        .map(|v| instant(v, &format!("{at}: {name}")))
                        .transpose()
                };
                let (not_before, not_after) = (when("not_before")?, when("not_after")?);
                if let (Some(a), Some(b)) = (not_before, not_after) {
                    if a > b {
                        return Err(invalid(format!("{at}: not_before is after not_after")));
                    }
                }
                crate::trust::TrustedKey {
                    key,
                    not_before,
                    not_after,
                }
            }
            other => return Err(wrong_type(&format!("a key or a key table at {at}"), other)),
        };
        out.push(key);
    }
    Ok(out)
}

/// `trust.revoked`: key IDs (16 hex digits) or whole public keys.
fn revoked_keys(v: &Value) -> Result<Vec<String>, Refusal> {
    let Value::Array(items) = v else {
        return Err(wrong_type("an array of key IDs", v));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(text) = item else {
            return Err(wrong_type(&format!("a key ID at index {i}"), item));
        };
        let id = if text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            text.to_ascii_lowercase()
        } else {
            public_key(
                text,
                &format!("index {i} (neither a 16-hex-digit key ID nor a key)"),
            )?
            .id()
        };
        out.push(id);
    }
    Ok(out)
}

const ONE_SECOND: Duration = Duration::from_secs(1);
/// Keeps every integer printable as a TOML integer (`i64`).
const MAX_INT: u64 = i64::MAX as u64;

// ---- the schema -----------------------------------------------------------

/// Every table and key the configuration knows.
pub(crate) static SCHEMA: &[(&str, Node)] = &[
    (
        "server",
        Node::Table(&[
            (
                "url",
                Node::Leaf(|s, v| {
                    let url = string(v)?;
                    values::check_server_url(url).map_err(invalid)?;
                    s.server.url = Some(url.to_owned());
                    Ok(())
                }),
            ),
            (
                "request_timeout",
                Node::Leaf(|s, v| {
                    s.server.request_timeout = duration(v, ONE_SECOND)?;
                    Ok(())
                }),
            ),
            (
                "max_response_bytes",
                Node::Leaf(|s, v| {
                    s.server.max_response_bytes = integer(v, 1024, 1 << 30)?;
                    Ok(())
                }),
            ),
        ]),
    ),
    (
        "identity",
        Node::Table(&[
            (
                "source",
                Node::Leaf(|s, v| {
                    s.identity.source = one_of(v, &IdentitySource::NAMES)?;
                    Ok(())
                }),
            ),
            (
                "device_id",
                Node::Leaf(|s, v| {
                    let id = string(v)?;
                    values::check_device_id(id).map_err(invalid)?;
                    s.identity.device_id = Some(id.to_owned());
                    Ok(())
                }),
            ),
            (
                "device_name",
                Node::Leaf(|s, v| {
                    let name = string(v)?;
                    if !name.is_empty() {
                        values::check_device_id(name)
                            .map_err(|m| invalid(m.replace("device id", "device name")))?;
                    }
                    s.identity.device_name = (!name.is_empty()).then(|| name.to_owned());
                    Ok(())
                }),
            ),
            (
                "machine_id_path",
                Node::Leaf(|s, v| {
                    s.identity.machine_id_path = absolute_path(v)?;
                    Ok(())
                }),
            ),
        ]),
    ),
    (
        "paths",
        Node::Table(&[
            (
                "state_dir",
                Node::Leaf(|s, v| {
                    s.paths.state_dir = absolute_path(v)?;
                    Ok(())
                }),
            ),
            (
                "download_root",
                Node::Leaf(|s, v| {
                    s.paths.download_root = absolute_path(v)?;
                    Ok(())
                }),
            ),
            (
                "plugin_dir",
                Node::Leaf(|s, v| {
                    s.paths.plugin_dir = absolute_path(v)?;
                    Ok(())
                }),
            ),
        ]),
    ),
    (
        "poll",
        Node::Table(&[(
            "interval",
            Node::Leaf(|s, v| {
                s.poll.interval = duration(v, ONE_SECOND)?;
                Ok(())
            }),
        )]),
    ),
    (
        "retry",
        Node::Table(&[
            (
                "interval",
                Node::Leaf(|s, v| {
                    s.retry.interval = duration(v, ONE_SECOND)?;
                    Ok(())
                }),
            ),
            (
                "max_retries",
                Node::Leaf(|s, v| {
                    // Bounded so a typo cannot make a one-shot task retry forever.
                    let n = integer(v, 0, 1000)?;
                    s.retry.max_retries = u32::try_from(n).map_err(|_| invalid("too large"))?;
                    Ok(())
                }),
            ),
        ]),
    ),
    (
        "tls",
        Node::Table(&[
            (
                "ca_bundle",
                Node::Leaf(|s, v| {
                    s.tls.ca_bundle = Some(absolute_path(v)?);
                    Ok(())
                }),
            ),
            (
                "client_cert",
                Node::Leaf(|s, v| {
                    s.tls.client_cert = Some(absolute_path(v)?);
                    Ok(())
                }),
            ),
            (
                "client_key",
                Node::Leaf(|s, v| {
                    s.tls.client_key = Some(absolute_path(v)?);
                    Ok(())
                }),
            ),
        ]),
    ),
    (
        "links",
        Node::Table(&[
            (
                "docked_interfaces",
                Node::Leaf(|s, v| {
                    s.links.docked_interfaces = patterns(v)?;
                    Ok(())
                }),
            ),
            (
                "low_bandwidth_interfaces",
                Node::Leaf(|s, v| {
                    s.links.low_bandwidth_interfaces = patterns(v)?;
                    Ok(())
                }),
            ),
            (
                "high_bandwidth_threshold_bps",
                Node::Leaf(|s, v| {
                    s.links.high_bandwidth_threshold_bps = integer(v, 1, MAX_INT)?;
                    Ok(())
                }),
            ),
            (
                "assume",
                Node::Leaf(|s, v| {
                    s.links.assume = one_of(v, &LinkAssume::NAMES)?;
                    Ok(())
                }),
            ),
        ]),
    ),
    (
        "download",
        Node::Table(&[
            (
                "bandwidth_limit",
                Node::Leaf(|s, v| {
                    s.download.bandwidth_limit = NonZeroU64::new(integer(v, 0, MAX_INT)?);
                    Ok(())
                }),
            ),
            (
                "require_hash",
                Node::Leaf(|s, v| {
                    s.download.require_hash = boolean(v)?;
                    Ok(())
                }),
            ),
        ]),
    ),
    (
        "trust",
        Node::Table(&[
            (
                "require_signature",
                Node::Leaf(|s, v| {
                    s.trust.require_signature = boolean(v)?;
                    Ok(())
                }),
            ),
            (
                "keys",
                Node::Leaf(|s, v| {
                    s.trust.keys = trusted_keys(v)?;
                    Ok(())
                }),
            ),
            (
                "revoked",
                Node::Leaf(|s, v| {
                    s.trust.revoked = revoked_keys(v)?;
                    Ok(())
                }),
            ),
        ]),
    ),
    (
        "outbox",
        Node::Table(&[(
            "max_items",
            Node::Leaf(|s, v| {
                s.outbox.max_items = integer(v, 1, MAX_INT)?;
                Ok(())
            }),
        )]),
    ),
    (
        "plugins",
        Node::Table(&[
            (
                "allowed_sha256",
                Node::Leaf(|s, v| {
                    s.plugins.allowed_sha256 = Some(sha256_allow_list(v)?);
                    Ok(())
                }),
            ),
            (
                "call_timeout",
                Node::Leaf(|s, v| {
                    s.plugins.call_timeout = duration(v, ONE_SECOND)?;
                    Ok(())
                }),
            ),
            (
                "run_as_user",
                Node::Leaf(|s, v| {
                    s.plugins.run_as_user = user_map(v)?;
                    Ok(())
                }),
            ),
        ]),
    ),
    (
        "log",
        Node::Table(&[
            (
                "format",
                Node::Leaf(|s, v| {
                    s.log.format = one_of(v, &LogFormat::NAMES)?;
                    Ok(())
                }),
            ),
            (
                "level",
                Node::Leaf(|s, v| {
                    let level = string(v)?;
                    values::check_log_filter(level).map_err(invalid)?;
                    s.log.level = level.to_owned();
                    Ok(())
                }),
            ),
        ]),
    ),
];

// ---- the walk -------------------------------------------------------------

/// What applying one fragment did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Dotted keys that were set (valid values).
    pub set: Vec<String>,
    /// Dotted keys whose value was refused.
    pub refused: Vec<String>,
}

/// Applies every valid key of `table` to `settings`; reports every problem
/// into `errors`, attributed to `file`.
pub(crate) fn apply(
    table: &Table,
    settings: &mut Settings,
    file: &str,
    errors: &mut Vec<ConfigError>,
) -> Applied {
    let mut applied = Applied::default();
    walk(table, SCHEMA, "", settings, file, errors, &mut applied);
    applied
}

fn walk(
    table: &Table,
    schema: &'static [(&'static str, Node)],
    prefix: &str,
    settings: &mut Settings,
    file: &str,
    errors: &mut Vec<ConfigError>,
    applied: &mut Applied,
) {
    for (key, value) in table {
        let dotted = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let Some((_, node)) = schema.iter().find(|(name, _)| name == key) else {
            errors.push(unknown_key(file, &dotted, key, value, schema, prefix));
            continue;
        };
        match (node, value) {
            (Node::Table(children), Value::Table(sub)) => {
                walk(sub, children, &dotted, settings, file, errors, applied);
            }
            (Node::Table(_), other) => errors.push(ConfigError::new(
                ConfigErrorKind::Type,
                file,
                &dotted,
                format!("expected a table [{dotted}], found {}", describe(other)),
            )),
            (Node::Leaf(set), value) => match set(settings, value) {
                Ok(()) => applied.set.push(dotted),
                Err(refusal) => {
                    errors.push(ConfigError::new(
                        refusal.kind,
                        file,
                        &dotted,
                        refusal.message,
                    ));
                    applied.refused.push(dotted);
                }
            },
        }
    }
}

fn unknown_key(
    file: &str,
    dotted: &str,
    key: &str,
    value: &Value,
    schema: &[(&str, Node)],
    prefix: &str,
) -> ConfigError {
    let what = match (prefix.is_empty(), value) {
        (true, Value::Table(_)) => format!("unknown table [{dotted}]"),
        (true, _) => "unknown top-level key".to_owned(),
        (false, _) => format!("unknown key in [{prefix}]"),
    };
    let known: Vec<&str> = schema.iter().map(|(name, _)| *name).collect();
    let hint = match known
        .iter()
        .map(|name| (edit_distance(key, name), *name))
        .filter(|(d, _)| *d <= 2)
        .min()
    {
        Some((_, name)) => format!("; did you mean {name:?}?"),
        None => format!("; known: {}", known.join(", ")),
    };
    ConfigError::new(ConfigErrorKind::UnknownKey, file, dotted, what + &hint)
}

/// Levenshtein distance, for "did you mean" hints on short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Every dotted leaf key the schema knows, in schema order.
pub fn known_keys() -> Vec<String> {
    fn collect(schema: &[(&str, Node)], prefix: &str, out: &mut Vec<String>) {
        for (name, node) in schema {
            let dotted = if prefix.is_empty() {
                (*name).to_owned()
            } else {
                format!("{prefix}.{name}")
            };
            match node {
                Node::Table(children) => collect(children, &dotted, out),
                Node::Leaf(_) => out.push(dotted),
            }
        }
    }
    let mut out = Vec::new();
    collect(SCHEMA, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("intervall", "interval"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
