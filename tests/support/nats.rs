//! Real NATS servers with JetStream on loopback, each in a folder of its
//! own: one alone, or three in a cluster. `examples/setup.sh --tests` puts
//! nats-server 2.15 in `target/tools/`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on (yet).
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// GET `path` from a server's monitoring port: the status and the body.
/// Blocking and plain, so that it works inside or outside a runtime.
fn monitor(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// The nats-server binary: `VESTIBULE_NATS_SERVER`, else the one setup
/// unpacked, else the one on `PATH`.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("VESTIBULE_NATS_SERVER") {
        return path.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let unpacked = target.join("tools/nats-server");
    if unpacked.exists() {
        return unpacked;
    }
    "nats-server".into()
}

/// One server of a [`Nats`] set.
struct Server {
    name: String,
    client: SocketAddr,
    monitor: SocketAddr,
    config: PathBuf,
    /// What it writes to standard error, every start of it.
    log: PathBuf,
    child: Option<Child>,
}

/// How long a server may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(90);

/// NATS servers with JetStream: `start(1)` a lone server, `start(3)` a
/// cluster. Stopped when dropped.
pub struct Nats {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl Nats {
    pub fn start(n: usize) -> Nats {
        // Ports are picked free, then bound by the server: another process
        // may take one in between, and that server exits. Start over on
        // other ports then, rather than fail the test.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut nats = Nats::configure(n);
            for i in 0..n {
                nats.spawn(i);
            }
            // A server that exited most likely lost a port; one that never
            // became ready may be waiting on a route another process took.
            // Either way, other ports are worth a try; the servers of this
            // attempt are stopped as `nats` is dropped.
            match (0..n).try_for_each(|i| nats.wait_ready(i)) {
                Ok(()) => return nats,
                Err(Failed::Exited(why) | Failed::NotReady(why)) if attempts < 3 => {
                    eprintln!("{why}\nstarting over on other ports")
                }
                Err(Failed::Exited(why) | Failed::NotReady(why)) => panic!("{why}"),
            }
        }
    }

    /// `n` servers' config files, on ports free now.
    fn configure(n: usize) -> Nats {
        let dir = tempfile::tempdir().unwrap();
        let routes: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect();
        let mut servers = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let (client, monitor) = (free_addr(), free_addr());
            let store = dir.path().join(&name);
            let mut text = format!(
                "server_name: {name}\nlisten: \"{client}\"\nhttp: \"{monitor}\"\n\
                 jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  max_file_store: 2GB\n}}\n",
                store.display()
            );
            if n > 1 {
                let others: Vec<String> = routes.iter().map(|r| format!("\"nats-route://{r}\"")).collect();
                text.push_str(&format!(
                    "cluster {{\n  name: vestibule-test\n  listen: \"{route}\"\n  routes: [{}]\n}}\n",
                    others.join(", ")
                ));
            }
            let config = dir.path().join(format!("{name}.conf"));
            std::fs::write(&config, text).unwrap();
            servers.push(Server {
                log: dir.path().join(format!("{name}.log")),
                name,
                client,
                monitor,
                config,
                child: None,
            });
        }
        Nats { servers, _dir: dir }
    }

    fn spawn(&mut self, i: usize) {
        let server = &mut self.servers[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&server.log)
            .unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(&server.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (examples/setup.sh --tests unpacks nats-server into target/tools/)",
                    binary().display()
                )
            });
        server.child = Some(child);
    }

    /// Until `/healthz` says JetStream is ready: in a cluster, that a meta
    /// leader was elected (`?js-enabled-only` would answer too early). On
    /// a two-core machine busy with a build beside the tests, three servers
    /// have taken over 30 s to elect one.
    fn wait_ready(&mut self, i: usize) -> Result<(), Failed> {
        let server = &mut self.servers[i];
        let deadline = Instant::now() + READY_WITHIN;
        // What `/healthz` answered last, for the message if it never says yes.
        let mut last_answer = String::from("nothing (the monitoring port never answered)");
        let said = |server: &Server| {
            let log = std::fs::read_to_string(&server.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        loop {
            match monitor(server.monitor, "/healthz") {
                Some((200, _)) => return Ok(()),
                Some((status, body)) => last_answer = format!("{status} {}", body.trim()),
                None => {}
            }
            if let Some(status) = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(Failed::Exited(format!(
                    "nats server {} exited ({status}):\n{}",
                    server.name,
                    said(server)
                )));
            }
            if Instant::now() >= deadline {
                return Err(Failed::NotReady(format!(
                    "nats server {} not ready within {}s; /healthz said {last_answer}; its log ends:\n{}",
                    server.name,
                    READY_WITHIN.as_secs(),
                    said(server)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `nats://…` for every server, as `[store] servers` lists them.
    /// The process ids of the servers running now.
    #[allow(dead_code)]
    pub fn pids(&self) -> Vec<u32> {
        self.servers
            .iter()
            .filter_map(|s| s.child.as_ref().map(Child::id))
            .collect()
    }

    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(|s| format!("nats://{}", s.client)).collect()
    }

    /// `servers = [...]` for the config.
    pub fn servers_toml(&self) -> String {
        let quoted: Vec<String> = self.urls().iter().map(|u| format!("\"{u}\"")).collect();
        format!("servers = [{}]", quoted.join(", "))
    }

    /// Which server leads `stream` now, by the servers' own monitoring.
    pub fn leader_of(&self, stream: &str) -> Option<usize> {
        for server in self.servers.iter().filter(|s| s.child.is_some()) {
            let Some((200, body)) = monitor(server.monitor, "/jsz?accounts=true&streams=true") else {
                continue;
            };
            let jsz: serde_json::Value = serde_json::from_str(&body).ok()?;
            let streams = jsz["account_details"]
                .as_array()?
                .iter()
                .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default());
            for detail in streams {
                if detail["name"] == stream
                    && let Some(leader) = detail["cluster"]["leader"].as_str()
                {
                    return self.servers.iter().position(|s| s.name == leader);
                }
            }
        }
        None
    }

    /// SIGKILL server `i`: no goodbye to its peers.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start server `i` again on its folder; returns once it is ready.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        if let Err(Failed::Exited(why) | Failed::NotReady(why)) = self.wait_ready(i) {
            panic!("{why}");
        }
    }
}

/// Why a server did not come up.
enum Failed {
    /// It stopped: most likely a port it was given was taken meanwhile.
    Exited(String),
    NotReady(String),
}

impl Drop for Nats {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
