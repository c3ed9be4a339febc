//! nginx from Debian as the baseline server: it serves package files to curl
//! (P1) and a static poll reply (P8).

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// A port that was free a moment ago (nginx cannot bind port 0 and report it).
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Waits until something accepts connections on `port`.
pub fn wait_listening(port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("{what} never listened on 127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A running nginx, stopped on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl Nginx {
    /// nginx with `workers` worker processes serving `root` at `/`, plus the
    /// `locations` given (nginx syntax, inside the `server` block).
    pub fn start(
        dir: &Path,
        root: &Path,
        workers: usize,
        locations: &str,
    ) -> anyhow::Result<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .context("nginx not found (bench/run installs it: apt-get install nginx-light)")?;
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        // As root, nginx workers would switch to `nobody` and fail to read
        // the scratch directory.
        let user = if std::fs::metadata("/proc/self")?.uid() == 0 {
            "user root;"
        } else {
            ""
        };
        let d = dir.display();
        let conf = format!(
            "daemon off;\n{user}\nworker_processes {workers};\nerror_log {d}/error.log warn;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 8192; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n\
             client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    root {root};\n{locations}\n  }}\n}}\n",
            root = root.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        let nginx = Nginx {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        if let Err(e) = wait_listening(port, "nginx") {
            let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
            bail!("{e}; nginx error.log:\n{log}");
        }
        Ok(nginx)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM is a fast shutdown for nginx; the master takes its workers down.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
