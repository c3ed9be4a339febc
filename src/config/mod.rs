//! Configuration: TOML fragments merged in order into one validated
//! [`Settings`], before anything starts.
//!
//! Layers, each overriding the earlier ones key by key (tables merge deeply,
//! arrays replace):
//!
//! 0. the built-in defaults, `config/default.toml` compiled into the binary;
//! 1. the image directory (`--image-dir`, default [`DEFAULT_IMAGE_DIR`]):
//!    `*.toml` in file-name order;
//! 2. the site directory (`--site-dir`, default [`DEFAULT_SITE_DIR`]): the same;
//! 3. a local file (`--config FILE`).
//!
//! [`load`] reports **every** problem at once: syntax errors with line and
//! column, unknown keys at any depth, wrong types and invalid values in every
//! file, then rules across keys on the merged result, each attributed to the
//! file and dotted key at fault. The binary prints them one per line and exits
//! with [`EXIT_CONFIG`].
//!
//! Files: [`sources`](Sources) finds fragments, `schema` knows every key and
//! checks and applies values, `validate` checks the merged result,
//! [`settings`](Settings) is the result, `identity` resolves the device id,
//! `links` classifies network links, `duration` and `values` check single values.

mod duration;
mod error;
mod identity;
mod links;
mod schema;
mod settings;
mod sources;
mod validate;
mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;

use toml::Table;

pub use duration::{format_duration, parse_duration, DurationError};
pub use error::{ConfigError, ConfigErrorKind, ConfigErrors, IdentityError, EXIT_CONFIG};
pub use identity::{GENERATED_ID_FILE, HOSTNAME_PATH};
pub use links::{glob_match, LinkAssume, LinkClass};
pub use schema::known_keys;
pub use settings::{
    DownloadSettings, IdentitySettings, IdentitySource, LinkSettings, LogFormat, LogSettings,
    OutboxSettings, PathSettings, PluginSettings, PollSettings, RetrySettings, ServerSettings,
    Settings, Sha256AllowList, TlsSettings,
};
pub use sources::{
    Sources, BUILT_IN_DEFAULTS, BUILT_IN_LABEL, DEFAULT_IMAGE_DIR, DEFAULT_SITE_DIR,
};
pub use values::MAX_DEVICE_ID_LEN;

/// A successfully loaded configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The merged, validated settings.
    pub settings: Settings,
    /// The fragment files merged, in order (the built-in defaults not listed).
    pub files: Vec<PathBuf>,
    /// Dotted key -> the file that last set it ([`BUILT_IN_LABEL`] for the
    /// defaults), for `check-config` to explain where a value comes from.
    pub provenance: BTreeMap<String, String>,
}

/// Reads, checks and merges every fragment of `sources` after the built-in
/// defaults. Either the validated settings, or every error found.
pub fn load(sources: &Sources) -> Result<Loaded, ConfigErrors> {
    let mut errors = Vec::new();
    let fragments = sources::read_fragments(sources, &mut errors);
    let mut settings = Settings::default();
    let mut provenance = validate::Provenance::default();
    let mut files = Vec::new();
    for fragment in fragments {
        let table = match fragment.text.parse::<Table>() {
            Ok(table) => table,
            Err(e) => {
                errors.push(syntax_error(&fragment.label, &fragment.text, &e));
                continue;
            }
        };
        let applied = schema::apply(&table, &mut settings, &fragment.label, &mut errors);
        for key in applied.set {
            provenance.set.insert(key, fragment.label.clone());
        }
        provenance.refused.extend(applied.refused);
        files.extend(fragment.path);
    }
    validate::check(&settings, &provenance, &mut errors);
    if errors.is_empty() {
        Ok(Loaded {
            settings,
            files,
            provenance: provenance.set,
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

fn syntax_error(file: &str, text: &str, error: &toml::de::Error) -> ConfigError {
    let message: Vec<&str> = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let message = format!("invalid TOML: {}", message.join("; "));
    let err = ConfigError::new(ConfigErrorKind::Syntax, file, "", message);
    match error.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            err.at(line, column)
        }
        None => err,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys with no default: shown commented out in `config/default.toml`.
    const OPTIONAL: [&str; 8] = [
        "server.url",
        "identity.device_id",
        "identity.device_name",
        "tls.ca_bundle",
        "tls.client_cert",
        "tls.client_key",
        "plugins.allowed_sha256",
        "plugins.run_as_user",
    ];

    /// `config/default.toml` and `Settings::default()` say the same thing,
    /// and the file mentions every key.
    #[test]
    fn default_toml_matches_settings_default() {
        let table: Table = BUILT_IN_DEFAULTS.parse().expect("default.toml parses");
        let mut errors = Vec::new();
        let mut settings = Settings::default();
        let applied = schema::apply(&table, &mut settings, BUILT_IN_LABEL, &mut errors);
        assert_eq!(errors, Vec::new());
        assert_eq!(settings, Settings::default());
        for key in known_keys() {
            let leaf = key.rsplit('.').next().unwrap_or_default();
            if OPTIONAL.contains(&key.as_str()) {
                assert!(
                    BUILT_IN_DEFAULTS.contains(&format!("# {leaf} = ")),
                    "{key} should be shown commented out in default.toml"
                );
            } else {
                assert!(applied.set.contains(&key), "default.toml should set {key}");
            }
        }
    }

    #[test]
    fn plugins_section_is_validated() {
        let table: Table = r#"
            [plugins]
            call_timeout = "30s"
            allowed_sha256 = { "exec.so" = "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB" }
            run_as_user = { exec = "dmplugin" }
        "#
        .parse()
        .expect("toml");
        let mut errors = Vec::new();
        let mut settings = Settings::default();
        schema::apply(&table, &mut settings, "t.toml", &mut errors);
        assert_eq!(errors, Vec::new());
        assert_eq!(
            settings.plugins.call_timeout,
            std::time::Duration::from_secs(30)
        );
        let list = settings.plugins.allowed_sha256.clone().expect("list");
        assert!(list.allows("exec.so", &"ab".repeat(32)));
        assert!(!list.allows("other.so", &"ab".repeat(32)));
        assert_eq!(settings.plugins.run_as_user["exec"], "dmplugin");
        // Round trip through the effective configuration.
        let printed: Table = settings.to_toml_string().parse().expect("printed toml");
        let mut again = Settings::default();
        schema::apply(&printed, &mut again, "printed", &mut errors);
        assert_eq!(errors, Vec::new());
        assert_eq!(again, settings);

        let bad: Table = r#"
            [plugins]
            allowed_sha256 = ["nothex"]
            call_timout = "1m"
        "#
        .parse()
        .expect("toml");
        schema::apply(&bad, &mut Settings::default(), "bad.toml", &mut errors);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{text:?}");
        assert!(text.iter().any(|t| t.contains("SHA-256")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("call_timeout")), "{text:?}");
    }

    #[test]
    fn line_columns() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("a\nbc", 3), (2, 2));
        assert_eq!(line_column("a\n", 2), (2, 1));
    }
}
