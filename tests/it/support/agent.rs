//! An agent running in-process on its own actix system and thread, with an
//! injected clock, against a `dm-server` on loopback: the real actors, the
//! real redb file, the real plugins (built from the workspace).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use dmagent::agent::AgentContext;
use dmagent::clock::{Clock, ManualClock};
use dmagent::config::{IdentitySource, LinkAssume, Settings};
use dmagent::plugin_host::PluginHost;
use dmagent::scheduler::actor::{SchedulerActor, Wake};
use dmagent::store::{PackageRecord, PackageState, Snapshot, Store};
use dmagent::transport::Transport;

use super::plugins::install_first_party;

/// 2025-01-01 00:00:00 UTC: where injected clocks start.
pub const EPOCH: u64 = 1_735_689_600;

/// A running in-process agent.
pub struct TestAgent {
    pub store: Arc<Store>,
    pub clock: ManualClock,
    _dir: tempfile::TempDir,
    pub settings: Settings,
    scheduler: Addr<SchedulerActor>,
    system: actix::System,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Settings for an agent with private directories under `dir`, talking to
/// `server_url`, with fast retries so tests do not wait minutes.
pub fn settings(dir: &Path, server_url: &str, device_id: &str) -> Settings {
    let mut s = Settings::default();
    s.server.url = Some(server_url.to_owned());
    s.server.request_timeout = Duration::from_secs(10);
    s.identity.source = IdentitySource::Configured;
    s.identity.device_id = Some(device_id.to_owned());
    s.identity.device_name = Some(device_id.to_owned());
    s.paths.state_dir = dir.join("state");
    s.paths.download_root = dir.join("packages");
    s.paths.plugin_dir = dir.join("plugins");
    s.retry.interval = Duration::from_secs(1);
    s.retry.max_retries = 5;
    s.links.assume = LinkAssume::High;
    s.plugins.call_timeout = Duration::from_secs(30);
    s
}

impl TestAgent {
    /// Starts an agent with `settings` (from [`settings`]) and a clock at [`EPOCH`].
    pub fn start(dir: tempfile::TempDir, settings: Settings) -> TestAgent {
        Self::start_with_fixtures(dir, settings, &[])
    }

    /// As [`start`](Self::start), with misbehaving fixture plugins installed
    /// next to the first-party ones.
    pub fn start_with_fixtures(
        dir: tempfile::TempDir,
        settings: Settings,
        fixtures: &[&str],
    ) -> TestAgent {
        Self::start_inner(dir, settings, fixtures, &[])
    }

    /// As [`start`](Self::start), without some first-party plugins (by
    /// installed file name, e.g. `dpkg_inventory.so`, whose output changes
    /// when another test installs a package).
    pub fn start_without(dir: tempfile::TempDir, settings: Settings, files: &[&str]) -> TestAgent {
        Self::start_inner(dir, settings, &[], files)
    }

    fn start_inner(
        dir: tempfile::TempDir,
        settings: Settings,
        fixtures: &[&str],
        without: &[&str],
    ) -> TestAgent {
        install_first_party(&settings.paths.plugin_dir);
        for file in without {
            std::fs::remove_file(settings.paths.plugin_dir.join(file)).expect("remove plugin");
        }
        for fixture in fixtures {
            super::plugins::install_fixture(&settings.paths.plugin_dir, fixture);
        }
        let store = Arc::new(Store::open(settings.database_path()).expect("open store"));
        let clock = ManualClock::new(EPOCH);
        let plugins =
            PluginHost::discover_with(&settings, Path::new(env!("CARGO_BIN_EXE_dmagent")));
        let context = Arc::new(AgentContext {
            settings: settings.clone(),
            store: store.clone(),
            transport: Transport::new(&settings).expect("transport"),
            device_id: settings.identity.device_id.clone().expect("device id"),
            device_name: settings.identity.device_name.clone(),
            clock: Arc::new(clock.clone()) as Arc<dyn Clock>,
            plugins: Arc::new(plugins),
            sys_class_net: dir.path().join("sysfs"),
            db_thread: Default::default(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix::System::new();
            system.block_on(async move {
                let handle = dmagent::agent::start(context);
                let _ = tx.send((actix::System::current(), handle.scheduler));
            });
            let _ = system.run();
        });
        let (system, scheduler) = rx.recv().expect("agent started");
        TestAgent {
            store,
            clock,
            _dir: dir,
            settings,
            scheduler,
            system,
            thread: Some(thread),
        }
    }

    /// Re-plans now (after moving the clock or changing tasks).
    pub fn wake(&self) {
        self.scheduler.do_send(Wake);
    }

    /// Brings a network interface up in the agent's private `/sys/class/net`
    /// (used when `links.assume` is `auto`), then re-plans.
    pub fn link_up(&self, interface: &str) {
        let dir = self._dir.path().join("sysfs").join(interface);
        std::fs::create_dir_all(&dir).expect("sysfs fixture");
        std::fs::write(dir.join("operstate"), "up\n").expect("operstate");
        std::fs::write(dir.join("speed"), "1000\n").expect("speed");
        std::fs::write(dir.join("flags"), "0x1003\n").expect("flags");
        self.wake();
    }

    /// The injected clock's reading.
    pub fn clock_now(&self) -> u64 {
        self.clock.now_unix()
    }

    /// Moves the injected clock and re-plans.
    pub fn advance(&self, secs: u64) {
        self.clock.advance(secs);
        self.wake();
    }

    pub fn snapshot(&self) -> Snapshot {
        self.store.snapshot().expect("snapshot")
    }

    pub fn package(&self, id: &str) -> Option<PackageRecord> {
        self.store.package(id).expect("read package")
    }

    pub fn package_dir(&self, destination: &str) -> PathBuf {
        self.settings.paths.download_root.join(destination)
    }

    /// Waits (bounded) until `condition` holds on the database.
    pub fn wait_for(&self, what: &str, condition: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let snapshot = self.snapshot();
            if condition(&snapshot) {
                return snapshot;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; state: {snapshot:#?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until the package is in `state`.
    pub fn wait_state(&self, id: &str, state: PackageState) -> Snapshot {
        self.wait_for(&format!("{id} to be {state}"), |s| {
            s.packages.iter().any(|p| p.id == id && p.state == state)
        })
    }

    /// Waits until the outbox is empty (everything delivered).
    pub fn wait_delivered(&self) -> Snapshot {
        self.wait_for("the outbox to drain", |s| s.outbox.is_empty())
    }

    fn shutdown(&mut self) {
        self.system.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.shutdown();
    }
}
