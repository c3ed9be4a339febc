//! The tests' PostgreSQL server: `DM_TEST_POSTGRES` (an admin URL, as
//! `.ci/run` exports), else the private one `scripts/test-postgres.sh`
//! starts (a Unix socket in /tmp, no TCP port). Each test gets a database
//! of its own.

use std::path::Path;
use std::sync::OnceLock;

/// The admin URL (database `postgres`). Panics, naming the fix, when no
/// PostgreSQL server can be had: these tests do not skip.
pub fn admin_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(u) = std::env::var("DM_TEST_POSTGRES") {
            if !u.trim().is_empty() {
                return u.trim().to_owned();
            }
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-postgres.sh");
        let out = std::process::Command::new(&script)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        assert!(
            out.status.success(),
            "no PostgreSQL for the tests ({}): {}\n\
             install Debian's postgresql package or set DM_TEST_POSTGRES",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    })
}

/// `url` (`scheme://authority/dbname?query`) naming database `db` instead.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_at = base.find("://").map_or(0, |i| i + 3);
    let authority = match base[authority_at..].find('/') {
        Some(slash) => &base[..authority_at + slash],
        None => base,
    };
    format!("{authority}/{db}{query}")
}

/// A new, empty database; its URL.
pub fn fresh_database() -> String {
    let name = format!("dm_test_{}", uuid::Uuid::new_v4().simple());
    dm_server::state::PostgresState::create_database(admin_url(), &name)
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    with_database(admin_url(), &name)
}
