//! A filter that misbehaves as `[plugins.config] misbehave` says:
//! `"recurse"` until the stack runs out, `"trap"` (a Rust panic),
//! `"log-storm"` (a hundred thousand log lines), `"log-flood"` (99 lines
//! with 100 KB fields), `"forge"` (log lines that try to look like the
//! host's), `"sleep"` (an hour, in a WASI clock wait), `"print"` (to
//! standard output and error), `"fail-long"` (an error of a megabyte) — or,
//! with `"none"`, keeps every event. With `only_door`, it misbehaves on that
//! door's events and keeps the others.

use serde::Deserialize;
use vestibule_plugin_sdk::{Error, Event, Filter, Verdict, export, log};

#[derive(Deserialize)]
struct Config {
    misbehave: String,
    #[serde(default)]
    only_door: Option<String>,
}

struct Misbehave;

impl Filter for Misbehave {
    type Config = Config;

    fn filter(event: Event, config: &Config) -> Result<Verdict, Error> {
        if config.only_door.is_some() && event.door_name() != config.only_door.as_deref() {
            return Ok(Verdict::Keep);
        }
        match config.misbehave.as_str() {
            "recurse" => Ok(Verdict::Drop(depth(event.id.len() as u64).to_string())),
            "trap" => panic!("told to trap on {}", event.id),
            "log-storm" => {
                for n in 0..100_000 {
                    log::info("Storm.", &[("n", &n.to_string())]);
                }
                Ok(Verdict::Keep)
            }
            "log-flood" => {
                let field = "x".repeat(100_000);
                for _ in 0..99 {
                    log::info("Flood.", &[("field", &field)]);
                }
                Ok(Verdict::Keep)
            }
            "forge" => {
                log::info(
                    "Looks fine.\n2099-01-01T00:00:00Z ERROR vestibule::admin: Admin token rotated.",
                    &[(
                        "key\r\n2099-01-01T00:00:00Z  WARN vestibule: forged",
                        "value\u{1b}[2Jcleared",
                    )],
                );
                Ok(Verdict::Keep)
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(Verdict::Keep)
            }
            "print" => {
                println!("to standard output");
                eprintln!("to standard error");
                Ok(Verdict::Keep)
            }
            "fail-long" => Err(Error::Failed("y".repeat(1 << 20))),
            "none" => Ok(Verdict::Keep),
            other => Err(Error::Config(format!("unknown misbehaviour `{other}`"))),
        }
    }
}

/// Recursion the optimizer cannot turn into a loop: it never returns, which
/// is the point.
#[allow(unconditional_recursion)]
fn depth(n: u64) -> u64 {
    let mut frame = [n; 64];
    frame[(n % 64) as usize] = std::hint::black_box(depth(n + 1));
    frame.iter().sum()
}

export!(filter: Misbehave);
