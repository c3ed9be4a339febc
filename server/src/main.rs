//! `dm-server`: serve a catalog to devices.
//!
//! Prints `listening on http://ADDR` as the first line of stdout once bound.
//! SIGHUP reloads the catalog; SIGINT/SIGTERM stop the server.
//! `dm-server keygen` and `dm-server endorse` make the X8 key files.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use dm_server::ServerConfig;

/// mimalloc, not glibc's malloc: every poll allocates and frees dozens of
/// small strings on two worker threads (benchmark P8).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Reference management server for dmagent.
#[derive(Debug, Parser)]
#[command(name = "dm-server", version)]
struct Args {
    /// Catalog directory (catalog.toml, packages/*.toml, package files).
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// State directory (state.redb, files/).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Keep the state in this PostgreSQL database instead of STATE/state.redb
    /// (postgres://user:password@host:port/dbname). Several dm-servers on
    /// one database act as one server; they must share --catalog and STATE
    /// (collected files).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Listen address; port 0 picks a free port.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A TOML config file (keys: catalog, state, database, listen, endpoint, auth,
    /// public_url, max_xml_body, max_file_body, signing_key,
    /// signing_endorsement, [faults]).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Path of the device endpoint.
    #[arg(long)]
    endpoint: Option<String>,
    /// Issue and check per-device X-Device-Auth tokens.
    #[arg(long)]
    auth: bool,
    /// Base URL for download links in location responses (default http://ADDR).
    #[arg(long)]
    public_url: Option<String>,
    /// Cap on one file-collection body in bytes.
    #[arg(long)]
    max_file_body: Option<u64>,
    /// Sign every instruction response (X8) with this private key (NAME.key
    /// from `dm-server keygen`).
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// Send this endorsement (from `dm-server endorse`) with the signatures,
    /// for a key that devices know only through an older key.
    #[arg(long, requires = "signing_key")]
    signing_endorsement: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Make an Ed25519 key pair: PREFIX.key (private, mode 0600) and
    /// PREFIX.pub (what device images list under [trust] keys).
    Keygen {
        /// Path prefix of the two files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Endorse a new public key with an old private key, for key rotation.
    Endorse {
        /// The old, trusted private key.
        #[arg(long)]
        key: PathBuf,
        /// The new public key (NEW.pub).
        #[arg(long)]
        public: PathBuf,
        /// Where to write the endorsement (NEW.endorsement).
        #[arg(long)]
        out: PathBuf,
    },
}

/// The key subcommands: print what was made, exit.
fn run_command(command: Command) -> ! {
    let result = match command {
        Command::Keygen { out } => dm_server::signing::keygen(&out)
            .map(|id| format!("key {id}: private {0}.key, public {0}.pub", out.display())),
        Command::Endorse { key, public, out } => dm_server::signing::endorse(&key, &public, &out)
            .map(|what| format!("{what}: {}", out.display())),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("dm-server: {e}");
            std::process::exit(1)
        }
    }
}

fn main() {
    let args = Args::parse();
    if let Some(command) = args.command {
        run_command(command);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    let mut cfg = ServerConfig::new("catalog", "state");
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    if let Some(c) = &args.config {
        if let Err(e) = cfg.apply_file(c) {
            eprintln!("dm-server: {e}");
            std::process::exit(2);
        }
    }
    if let Some(d) = args.catalog {
        cfg.catalog_dir = d;
    }
    if let Some(d) = args.state {
        cfg.state_dir = d;
    }
    if let Some(d) = args.database {
        cfg.database = Some(d);
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(e) = args.endpoint {
        cfg.endpoint = e;
    }
    if args.auth {
        cfg.auth = true;
    }
    if let Some(u) = args.public_url {
        cfg.public_url = Some(u);
    }
    if let Some(m) = args.max_file_body {
        cfg.max_file_body = m;
    }
    if let Some(key) = &args.signing_key {
        match dm_server::signing::Signer::load(key, args.signing_endorsement.as_deref()) {
            Ok(signer) => {
                tracing::info!(key = %signer.key_id(), "signing instruction responses");
                cfg.signer = Some(std::sync::Arc::new(signer));
            }
            Err(e) => {
                eprintln!("dm-server: --signing-key: {e}");
                std::process::exit(2);
            }
        }
    }
    let server = match dm_server::start(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dm-server: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on http://{}", server.addr());
    let _ = out.flush();

    let catalog = server.catalog().clone();
    let signals = actix_web::rt::System::new().block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
        let t1 = tx.clone();
        actix_web::rt::spawn(async move {
            while hup.recv().await.is_some() {
                let _ = t1.send(false);
            }
        });
        let t2 = tx.clone();
        actix_web::rt::spawn(async move {
            term.recv().await;
            let _ = t2.send(true);
        });
        actix_web::rt::spawn(async move {
            int.recv().await;
            let _ = tx.send(true);
        });
        while let Some(stop) = rx.recv().await {
            if stop {
                break;
            }
            let c = catalog.clone();
            // A failed reload is reported by the handle; the old catalog stays.
            let _ = actix_web::rt::task::spawn_blocking(move || c.reload()).await;
        }
        Ok::<(), std::io::Error>(())
    });
    if let Err(e) = signals {
        eprintln!("dm-server: signal handling: {e}");
    }
    server.stop();
}
