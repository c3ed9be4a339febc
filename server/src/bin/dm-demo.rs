//! `dm-demo`: the main job of the repository in one command.
//!
//! Builds the agent and its plugins, starts the reference server on
//! loopback with the sample catalog, runs `dmagent run` against it in a
//! temporary state directory (signed updates required, with a key made for
//! the run), shows the download progress, accepts the
//! optional package, and ends with a summary of the packages, their states,
//! why any still waits, and the status messages the server received.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// First-party plugins the demo installs: `(crate, installed file name)`.
const PLUGINS: &[(&str, &str)] = &[
    ("dmagent-plugin-exec", "exec.so"),
    ("dmagent-plugin-archive", "archive.so"),
    ("dmagent-plugin-machine-inventory", "machine_inventory.so"),
    ("dmagent-plugin-software-inventory", "software_inventory.so"),
    ("dmagent-plugin-file-collection", "file_collection.so"),
];

/// The demo device: a kiosk, so the docked-only package is assigned too.
const DEVICE: &str = "KIOSK-DEMO-1";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dm-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn run() -> Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace")?
        .to_path_buf();
    let profile_dir = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .ok_or("no target dir")?
        .to_path_buf();

    step("building the agent and its plugins");
    build(&workspace, &profile_dir)?;
    let dmagent = profile_dir.join("dmagent");

    let tmp = tempfile::Builder::new()
        .prefix("dm-demo-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let root = tmp.path();
    let catalog = root.join("catalog");
    copy_dir(&workspace.join("config/sample-catalog"), &catalog)?;
    add_firmware(&catalog)?;

    step("making the server's signing key (X8)");
    std::fs::create_dir_all(root.join("keys")).map_err(|e| e.to_string())?;
    let key_prefix = root.join("keys/server");
    let key_id = dm_server::signing::keygen(&key_prefix)?;
    let key_file = root.join("keys/server.key");
    let signer = dm_server::signing::Signer::load(&key_file, None)?;
    println!("   key {key_id}: the server signs every instruction response, the agent requires it");

    step("starting the reference server on loopback");
    let mut config = dm_server::ServerConfig::new(&catalog, root.join("server-state"));
    config.workers = 1;
    config.signer = Some(std::sync::Arc::new(signer));
    let server = dm_server::start(config).map_err(|e| format!("server: {e}"))?;
    println!("   dm-server at {}", server.endpoint_url());

    let plugins = root.join("plugins");
    install_plugins(&profile_dir, &plugins)?;
    let agent_config = root.join("agent.toml");
    std::fs::write(
        &agent_config,
        format!(
            "[server]\nurl = \"{url}\"\n\
             [identity]\nsource = \"configured\"\ndevice_id = \"{DEVICE}\"\ndevice_name = \"{DEVICE}\"\n\
             [paths]\nstate_dir = \"{r}/state\"\ndownload_root = \"{r}/packages\"\nplugin_dir = \"{r}/plugins\"\n\
             [links]\nassume = \"high\"\n\
             [trust]\nrequire_signature = true\nkeys = [{{ file = \"{r}/keys/server.pub\", id = \"{key_id}\" }}]\n",
            url = server.endpoint_url(),
            r = root.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let agent = Agent {
        exe: dmagent,
        config: agent_config,
    };

    step(&format!(
        "running `dmagent run` as device {DEVICE} (state in {})",
        root.display()
    ));
    let log = std::fs::File::create(root.join("agent.log")).map_err(|e| e.to_string())?;
    let mut daemon = Daemon(
        Command::new(&agent.exe)
            .args(["--no-system-config", "--config"])
            .arg(&agent.config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting dmagent: {e}"))?,
    );

    let outcome = watch(&agent, &server);
    let summary = agent.status_json();
    let text = agent.status_text();
    daemon.stop();
    outcome?;

    step("what the agent says (`dmagent status`)");
    print!("{}", text.unwrap_or_default());
    step("what the server received");
    print_server_view(&server)?;
    if let Some(summary) = summary {
        print_summary(&summary);
    }
    server.stop();
    println!("\nDemo complete; its temporary directories are removed.");
    Ok(())
}

/// Follows the agent until the expected end state, printing progress.
fn watch(agent: &Agent, server: &dm_server::RunningServer) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    let mut accepted = false;
    loop {
        if Instant::now() > deadline {
            return Err("the demo did not reach its end state within two minutes".into());
        }
        std::thread::sleep(Duration::from_millis(200));
        let Some(status) = agent.status_json() else {
            continue;
        };
        let packages = status["packages"].as_array().cloned().unwrap_or_default();
        for p in &packages {
            let id = p["id"].as_str().unwrap_or_default().to_owned();
            let line = format!(
                "{:<15} {:<12} {}",
                id,
                p["state"].as_str().unwrap_or_default(),
                progress(p)
            );
            if shown.get(&id) != Some(&line) {
                println!("   {line}");
                shown.insert(id.clone(), line);
            }
            if id == "DEMO-TOOLS" && !accepted && p["state"] == "pending" {
                accepted = true;
                println!("   -> the optional package waits for the operator: `dmagent accept DEMO-TOOLS`");
                agent.accept("DEMO-TOOLS")?;
            }
        }
        let state = |id: &str| {
            packages
                .iter()
                .find(|p| p["id"] == id)
                .and_then(|p| p["state"].as_str())
                .unwrap_or("")
                .to_owned()
        };
        let done = ["DEMO-APP", "DEMO-RECURRING", "DEMO-TOOLS", "DEMO-FIRMWARE"]
            .iter()
            .all(|id| state(id) == "installed")
            && state("DEMO-DOCKED") == "pending"
            && status["outbox"].as_array().is_some_and(Vec::is_empty)
            && server
                .state()
                .inventories(DEVICE)
                .is_ok_and(|inventories| inventories.iter().any(|i| i.kind == "machine"));
        if done {
            return Ok(());
        }
    }
}

fn progress(p: &serde_json::Value) -> String {
    match (p["bytes_done"].as_u64(), p["bytes_total"].as_u64()) {
        (Some(done), Some(total)) if total > 0 => {
            format!("{done}/{total} bytes ({}%)", done * 100 / total)
        }
        _ => String::new(),
    }
}

fn print_server_view(server: &dm_server::RunningServer) -> Result<()> {
    let statuses = server.state().statuses(DEVICE).map_err(|e| e.to_string())?;
    println!("   {:<15} {:<8} MEANING", "PACKAGE", "MESSAGE");
    for s in &statuses {
        let meaning = match s.message_id {
            11030 => "download starting",
            11031 => "download succeeded (SHA-256 verified)",
            11032 => "download failed",
            11035 => "post-install command succeeded",
            11036 => "post-install command failed",
            _ => "other",
        };
        println!("   {:<15} {:<8} {meaning}", s.package_id, s.message_id);
    }
    for inventory in server
        .state()
        .inventories(DEVICE)
        .map_err(|e| e.to_string())?
    {
        let items: Vec<String> = inventory.document["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["name"].as_str().map(str::to_owned))
            .collect();
        println!(
            "   {} inventory received at {}: {} items ({})",
            inventory.kind,
            inventory.received_at,
            items.len(),
            items.join(", ")
        );
    }
    Ok(())
}

fn print_summary(status: &serde_json::Value) {
    step("summary");
    println!("   {:<15} {:<10} NEXT STEP", "PACKAGE", "STATE");
    for p in status["packages"].as_array().into_iter().flatten() {
        println!(
            "   {:<15} {:<10} {}",
            p["id"].as_str().unwrap_or_default(),
            p["state"].as_str().unwrap_or_default(),
            p["next_step"].as_str().unwrap_or_default()
        );
    }
}

struct Agent {
    exe: PathBuf,
    config: PathBuf,
}

impl Agent {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(["--no-system-config", "--config"])
            .arg(&self.config)
            .args(args);
        cmd
    }

    fn status_json(&self) -> Option<serde_json::Value> {
        let out = self
            .command(&["status", "--json"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (json["daemon_running"] == true).then_some(json)
    }

    fn status_text(&self) -> Option<String> {
        let out = self.command(&["status"]).output().ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn accept(&self, package: &str) -> Result<()> {
        let out = self
            .command(&["accept", package])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "dmagent accept: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        print!("   {}", String::from_utf8_lossy(&out.stdout));
        Ok(())
    }
}

/// The agent process; stopped with SIGTERM (and reaped) when dropped.
struct Daemon(Child);

impl Daemon {
    fn stop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

fn step(text: &str) {
    println!("\n== {text}");
}

/// `cargo build` of the agent binary and the plugins, in this binary's profile.
fn build(workspace: &Path, profile_dir: &Path) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = profile_dir.parent().ok_or("no target dir")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--profile")
        .arg(if profile == "debug" { "dev" } else { profile })
        .args(["-p", "dmagent", "--bin", "dmagent"]);
    for (krate, _) in PLUGINS {
        cmd.args(["-p", krate]);
    }
    let status = cmd.status().map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err("cargo build of the agent and plugins failed".into());
    }
    Ok(())
}

/// Installs the plugins as the agent requires: a directory and files that
/// only their owner may write.
fn install_plugins(profile_dir: &Path, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    for (krate, name) in PLUGINS {
        let from = profile_dir.join(format!("lib{}.so", krate.replace('-', "_")));
        let to = dir.join(name);
        std::fs::copy(&from, &to).map_err(|e| format!("{}: {e}", from.display()))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A bigger package, generated rather than checked in, so the download
/// progress is visible: 6 MiB under a 2 MiB/s `BandwidthLimit` (X5).
fn add_firmware(catalog: &Path) -> Result<()> {
    let mut x: u32 = 0x2545_f491;
    let bytes: Vec<u8> = (0..6 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(catalog.join("files/firmware.bin"), bytes).map_err(|e| e.to_string())?;
    std::fs::write(
        catalog.join("packages/firmware.toml"),
        "id = \"DEMO-FIRMWARE\"\nname = \"Firmware image\"\nshort_description = \"6 MiB, bandwidth-limited\"\n\
         destination = \"demo-firmware\"\nfile = \"files/firmware.bin\"\nbandwidth_limit = 2097152\n",
    )
    .map_err(|e| e.to_string())?;
    let path = catalog.join("catalog.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let assigned = "packages = [\"DEMO-APP\", \"DEMO-TOOLS\", \"DEMO-RECURRING\"]";
    if !text.contains(assigned) {
        return Err("the sample catalog's assignment rule changed; update dm-demo".into());
    }
    let text = text.replace(
        assigned,
        "packages = [\"DEMO-APP\", \"DEMO-TOOLS\", \"DEMO-RECURRING\", \"DEMO-FIRMWARE\"]",
    );
    std::fs::write(&path, text).map_err(|e| e.to_string())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let dest = to.join(entry.file_name());
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
