//! The `dmagent` command line: parse arguments, load the configuration, then
//! hand over to the daemon or to a one-shot command. Exit codes are stable so
//! that init systems and image tests can tell failures apart.

mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Settings, Sources};
use crate::control::{self, Request, Response};
use crate::daemon::store_actor::{self, ControlContext};
use crate::plugin_host::{self, DirState, EntryStatus, PluginHost};
use crate::store::{Store, StoreError};

/// Exit code: a command failed at run time (network, database, daemon).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: the client database cannot be used (newer schema, locked, corrupt).
pub const EXIT_DATABASE: u8 = 74;
/// Exit code: the configuration is invalid (EX_CONFIG); every error was printed.
pub const EXIT_CONFIG: u8 = config::EXIT_CONFIG;

#[derive(Debug, Parser)]
#[command(
    name = "dmagent",
    version,
    about = "Device management agent: keeps this device on the packages its management server assigns"
)]
struct Cli {
    #[command(flatten)]
    sources: SourceArgs,
    #[command(subcommand)]
    command: Command,
}

/// Where the configuration fragments come from (merged in this order, after
/// the defaults built into the binary).
#[derive(Debug, Args)]
struct SourceArgs {
    /// Directory of the device image's fragments [default: /usr/lib/dmagent/conf.d]
    #[arg(long, global = true, value_name = "DIR")]
    image_dir: Option<PathBuf>,
    /// Directory of the site's fragments [default: /etc/dmagent/conf.d]
    #[arg(long, global = true, value_name = "DIR")]
    site_dir: Option<PathBuf>,
    /// A local configuration file, applied last
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Use only the built-in defaults and --config, not the system directories
    #[arg(long, global = true)]
    no_system_config: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent daemon
    Run,
    /// Show packages, download progress, queued tasks and the outbox
    Status {
        /// Print JSON instead of tables
        #[arg(long)]
        json: bool,
    },
    /// Ask the agent to poll the management server now
    PollNow,
    /// Accept an optional package: schedule its download and post-install step
    Accept {
        /// The package ID, as `dmagent status` shows it
        package_id: String,
    },
    /// Print the report the collectors would send now, without sending it
    Inventory {
        /// Which report
        #[arg(long, value_enum, default_value = "machine")]
        kind: InventoryKind,
        /// Print JSON instead of the XML document
        #[arg(long)]
        json: bool,
    },
    /// Check the configuration: list every error with its file and key
    CheckConfig {
        /// Also print the effective merged configuration
        #[arg(long)]
        print: bool,
    },
    /// List the plugins found in the plugin directory: loaded, or refused and why
    Plugins {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Check a plugin library before shipping it: ABI version, symbols, and
    /// calls against fixtures, in the same child-process host the agent uses
    PluginCheck {
        /// The plugin library (*.so)
        file: PathBuf,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        /// Deadline of each call, in seconds
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        timeout: u64,
        /// Post-install handlers: the command line of the package-directory
        /// fixtures [default: ./install.sh, which the fixtures hold]
        #[arg(long, value_name = "CMD")]
        command_line: Option<String>,
    },
    /// Internal: the plugin-host child process that loads and calls one plugin
    #[command(name = "__plugin-host", hide = true)]
    PluginHost {
        /// The plugin file
        #[arg(long, value_name = "PATH")]
        plugin: PathBuf,
        /// The uid besides root that may own the file
        #[arg(long, value_name = "UID")]
        trusted_uid: u32,
        /// The SHA-256 the parent checked
        #[arg(long, value_name = "HEX")]
        sha256: String,
        /// Only describe the plugin
        #[arg(long)]
        describe: bool,
    },
}

/// `dmagent inventory --kind`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum InventoryKind {
    /// Software inventory (`FileReport`), with the server's file filters
    Software,
    /// Machine inventory (`Inventory`)
    Machine,
    /// File collection: the files that would be uploaded
    Files,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::PluginHost {
        plugin,
        trusted_uid,
        sha256,
        describe,
    } = &cli.command
    {
        // The child needs no configuration: the parent passes what it checked.
        return plugin_host::child_main(&plugin_host::ChildArgs {
            plugin,
            trusted_uid: *trusted_uid,
            sha256,
            describe: *describe,
        });
    }
    if let Command::PluginCheck {
        file,
        json,
        timeout,
        command_line,
    } = &cli.command
    {
        // A vendor's machine has no agent configuration: none is read.
        return plugin_check(file, *json, *timeout, command_line.clone());
    }
    let sources = cli.sources.to_sources();
    let loaded = match config::load(&sources) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!(
                "dmagent: invalid configuration ({} error(s)):",
                errors.0.len()
            );
            eprintln!("{errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let settings = loaded.settings;
    match cli.command {
        Command::CheckConfig { print } => {
            println!("configuration OK; fragments merged in order:");
            println!("  <built-in defaults>");
            for file in &loaded.files {
                println!("  {}", file.display());
            }
            if print {
                println!();
                print!("{}", settings.to_toml_string());
            }
            ExitCode::SUCCESS
        }
        Command::Run => run(&settings),
        Command::Plugins { json } => plugins(&settings, json),
        Command::PluginHost { .. } | Command::PluginCheck { .. } => ExitCode::from(EXIT_FAILURE),
        Command::Status { json } => match control_request(&settings, &Request::Status) {
            Ok(Response::Status(report)) => {
                if json {
                    match serde_json::to_string_pretty(&report) {
                        Ok(text) => println!("{text}"),
                        Err(e) => {
                            eprintln!("dmagent: cannot encode status: {e}");
                            return ExitCode::from(EXIT_FAILURE);
                        }
                    }
                } else {
                    print!("{}", status::render(&report));
                }
                ExitCode::SUCCESS
            }
            other => report_failure(other),
        },
        Command::Inventory { kind, json } => inventory(&settings, kind, json),
        Command::Accept { package_id } => {
            match control_request(&settings, &Request::Accept { package_id }) {
                Ok(Response::Done { message }) => {
                    println!("{message}");
                    ExitCode::SUCCESS
                }
                other => report_failure(other),
            }
        }
        Command::PollNow => match control_request(&settings, &Request::PollNow) {
            Ok(Response::Done { message }) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            other => report_failure(other),
        },
    }
}

impl SourceArgs {
    fn to_sources(&self) -> Sources {
        let mut sources = if self.no_system_config {
            Sources::none()
        } else {
            Sources::system_defaults()
        };
        if let Some(dir) = &self.image_dir {
            sources = sources.with_image_dir(dir);
        }
        if let Some(dir) = &self.site_dir {
            sources = sources.with_site_dir(dir);
        }
        if let Some(file) = &self.config {
            sources = sources.with_local_file(file);
        }
        sources
    }
}

fn run(settings: &Settings) -> ExitCode {
    if let Err(e) = crate::logging::init(&settings.log) {
        eprintln!("dmagent: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let device_id = match settings.resolve_device_id() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!("cannot determine the device ID: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match crate::daemon::run(settings, device_id) {
        Ok(()) => ExitCode::SUCCESS,
        Err(crate::daemon::DaemonError::Store(e)) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_DATABASE)
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `dmagent plugins`: discovery as the daemon does it, printed.
fn plugins(settings: &Settings, json: bool) -> ExitCode {
    let host = PluginHost::discover(settings);
    if json {
        let listing = serde_json::json!({
            "plugin_dir": host.dir(),
            "directory": host.dir_state(),
            "plugins": host.entries(),
        });
        match serde_json::to_string_pretty(&listing) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("dmagent: cannot encode the plugin list: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "plugin directory: {} (paths.plugin_dir)",
        host.dir().display()
    );
    let install_hint = "install a plugin by copying its *.so file there \
        (owned by root, mode 0644, directory not group- or world-writable), \
        or point paths.plugin_dir elsewhere";
    match host.dir_state() {
        DirState::Missing => {
            println!("  the directory does not exist: no plugins are installed");
            println!("  {install_hint}");
        }
        DirState::Empty => {
            println!("  the directory holds no *.so files: no plugins are installed");
            println!("  {install_hint}");
        }
        DirState::Unreadable { error } => {
            println!("  the directory cannot be read ({error}): no plugins were loaded");
        }
        DirState::Found { .. } => {}
    }
    for entry in host.entries() {
        let file = entry
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &entry.status {
            EntryStatus::Loaded(info) => {
                let reports = if info.report_kinds == 0 {
                    String::new()
                } else {
                    let names: Vec<&str> = [(1, "software"), (2, "machine"), (4, "files")]
                        .into_iter()
                        .filter(|(bit, _)| info.report_kinds & bit != 0)
                        .map(|(_, name)| name)
                        .collect();
                    format!(" reports={}", names.join(","))
                };
                println!(
                    "  loaded   {file}: {} {} ({}{reports}, ABI {}.{}, sha256 {})",
                    info.name,
                    info.version,
                    info.kind.as_str(),
                    info.abi_major,
                    info.abi_minor,
                    info.sha256.get(..16).unwrap_or_default()
                );
            }
            EntryStatus::Refused { failure } => {
                println!("  refused  {file}: {}", failure.cause);
            }
        }
    }
    if let DirState::Found { files } = host.dir_state() {
        let loaded = host.loaded().count();
        println!(
            "  {files} file(s): {loaded} loaded, {} refused",
            files - loaded
        );
    }
    ExitCode::SUCCESS
}

/// `dmagent plugin-check`: the table (or JSON); exit 0 only when every row passed.
fn plugin_check(
    file: &std::path::Path,
    json: bool,
    timeout: u64,
    command_line: Option<String>,
) -> ExitCode {
    if timeout == 0 {
        eprintln!("dmagent: --timeout must be at least 1 second");
        return ExitCode::from(EXIT_FAILURE);
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let options = plugin_host::check::CheckOptions {
        call_timeout: std::time::Duration::from_secs(timeout),
        command_line,
    };
    let report = plugin_host::check::check_plugin(file, &exe, &options);
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("dmagent: cannot encode the report: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    } else {
        print!("{}", report.render());
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// Asks the running daemon; when none runs, carries the request out on the
/// database directly.
fn control_request(settings: &Settings, request: &Request) -> Result<Response, CliError> {
    let socket = control::socket_path(&settings.paths.state_dir);
    match control::client::call(&socket, request) {
        Ok(response) => return Ok(response),
        Err(control::client::ClientError::NotRunning(_)) => {}
        Err(e) => return Err(CliError::Other(e.to_string())),
    }
    let database = settings.database_path();
    let context = ControlContext {
        settings: settings.clone(),
        device_id: settings.resolve_device_id().ok(),
        daemon_running: false,
        clock: std::sync::Arc::new(crate::clock::SystemClock),
    };
    // Reading must not create the database as a side effect.
    if !database.exists() {
        match request {
            Request::Status => {
                let report = control::StatusReport::empty(&context, context.clock.now_unix());
                return Ok(Response::Status(Box::new(report)));
            }
            Request::ServerValues => return Ok(Response::ServerValues(Box::default())),
            Request::PollNow | Request::Accept { .. } => {}
        }
    }
    // A daemon that is starting holds the database before its socket is up:
    // wait for it briefly rather than failing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(&database) {
            Ok(store) => return Ok(store_actor::execute(&store, &context, request)),
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
                match control::client::call(&socket, request) {
                    Ok(response) => return Ok(response),
                    Err(control::client::ClientError::NotRunning(_)) => {}
                    Err(e) => return Err(CliError::Other(e.to_string())),
                }
            }
            Err(e) => return Err(CliError::Store(e)),
        }
    }
}

#[derive(Debug)]
enum CliError {
    Store(StoreError),
    Other(String),
}

fn report_failure(outcome: Result<Response, CliError>) -> ExitCode {
    match outcome {
        Ok(Response::Error { message }) => {
            eprintln!("dmagent: {message}");
            ExitCode::from(EXIT_FAILURE)
        }
        Ok(other) => {
            eprintln!("dmagent: unexpected answer from the daemon: {other:?}");
            ExitCode::from(EXIT_FAILURE)
        }
        Err(CliError::Store(e)) => {
            eprintln!("dmagent: {e}");
            ExitCode::from(EXIT_DATABASE)
        }
        Err(CliError::Other(message)) => {
            eprintln!("dmagent: {message}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Runs the collectors of one report kind here and prints the result.
fn inventory(settings: &Settings, kind: InventoryKind, json: bool) -> ExitCode {
    use crate::protocol::{Document, ReportType};
    use dmagent_plugin_api::CollectResult;
    let report = match kind {
        InventoryKind::Software => ReportType::SoftwareInventory,
        InventoryKind::Machine => ReportType::MachineInventory,
        InventoryKind::Files => ReportType::FileCollection,
    };
    // The server's report settings (file filters), from the daemon or the database.
    let values = match control_request(settings, &Request::ServerValues) {
        Ok(Response::ServerValues(values)) => *values,
        Ok(_) | Err(_) => crate::store::ServerValues::default(),
    };
    let request = crate::inventory::collect_request(
        report,
        crate::inventory::settings_of(&values, report),
        crate::inventory::actor::MAX_COLLECTED_FILE_BYTES,
    );
    let host = crate::plugin_host::PluginHost::discover(settings);
    let mut outputs = Vec::new();
    for (plugin, result) in host.collect(crate::inventory::kind_of(report), &request) {
        match result {
            Ok(output) => outputs.push(output),
            Err(failure) => eprintln!("dmagent: collector {plugin} failed: {failure}"),
        }
    }
    if outputs.is_empty() {
        eprintln!(
            "dmagent: no {report} collector produced anything (plugin dir {})",
            host.dir().display()
        );
        return ExitCode::from(EXIT_FAILURE);
    }
    let text = match report {
        ReportType::SoftwareInventory => {
            let doc = crate::plugin_host::file_report(&outputs);
            if json {
                serde_json::to_string_pretty(&doc)
            } else {
                Ok(doc.encode_string())
            }
        }
        ReportType::MachineInventory => {
            let doc = crate::plugin_host::machine_inventory(&outputs);
            if json {
                serde_json::to_string_pretty(&doc)
            } else {
                Ok(doc.encode_string())
            }
        }
        ReportType::FileCollection => {
            let files: Vec<_> = outputs
                .iter()
                .flat_map(|o| match o {
                    CollectResult::Files { files } => files.clone(),
                    _ => Vec::new(),
                })
                .collect();
            if json {
                serde_json::to_string_pretty(&files)
            } else {
                Ok(files
                    .iter()
                    .map(|f| format!("{}\t{} bytes\n", f.path, f.size))
                    .collect())
            }
        }
    };
    match text {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dmagent: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
