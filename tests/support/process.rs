//! `vestibule serve` as a process: for what only a process shows — SIGKILL,
//! SIGHUP, and the log as an operator reads it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `vestibule` binary this test suite was built with.
pub fn vestibule() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vestibule"))
}

/// Run a `vestibule` subcommand on `config`; its standard output. It must
/// succeed.
pub fn cli(args: &[&str], config: &Path) -> String {
    let output = vestibule().args(args).arg("--config").arg(config).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

pub struct Process {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Start `vestibule serve` on `config`; returns once it listens.
    pub fn start(config: &Path) -> Process {
        let child = vestibule()
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Process::adopt(child)
    }

    /// Watch a `vestibule serve` started with its standard error piped;
    /// returns once it listens.
    pub fn adopt(mut child: Child) -> Process {
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("Listening.") => {
                    seen.push(line);
                    break;
                }
                Some(Ok(line)) => seen.push(line),
                _ => panic!("the host stopped before listening: {seen:#?}"),
            }
        }
        let log = Arc::new(Mutex::new(seen));
        // Keep reading so the host never blocks on a full pipe.
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        Process { child, log }
    }

    /// Where it listens, as it logged (for a config with port 0).
    pub fn addr(&self) -> std::net::SocketAddr {
        let log = self.log.lock().unwrap();
        let line = log.iter().find(|l| l.contains("Listening.")).expect("it listens");
        if line.starts_with('{') {
            // `[log] format = "json"`
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            return line["addr"].as_str().expect("the address is logged").parse().unwrap();
        }
        let addr = line.split("addr=").nth(1).expect("the address is logged");
        addr.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// Every line the host logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Wait up to `within` for a logged line containing `text`; the lines
    /// that contain it.
    pub fn wait_for_log(&self, text: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let found: Vec<String> = self.log().into_iter().filter(|l| l.contains(text)).collect();
            if !found.is_empty() {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no `{text}` logged within {within:?}:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send the signal named `signal` (`HUP`, `TERM`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// Wait up to `within` for the host to exit; its exit code (`None`
    /// if a signal ended it) and everything it logged.
    pub fn wait_exit(mut self, within: Duration) -> (Option<i32>, Vec<String>) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread drains the pipe to its end.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.log());
            }
            assert!(
                Instant::now() < deadline,
                "still running {within:?} later:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill(self) {
        drop(self);
    }
}

/// A test that fails half-way still stops its host: a host left running
/// would keep the test's output pipe open and its port taken.
impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
