//! A filter that misbehaves as `[plugins.config] misbehave` says:
//! `"recurse"` until the stack runs out, `"trap"` (a Rust panic), or
//! `"log-storm"` (a hundred thousand log lines) — or, with `"none"`, keeps
//! every event.

use serde::Deserialize;
use vestibule_plugin_sdk::{Error, Event, Filter, Verdict, export, log};

#[derive(Deserialize)]
struct Config {
    misbehave: String,
}

struct Misbehave;

impl Filter for Misbehave {
    fn filter(event: Event) -> Result<Verdict, Error> {
        let config: Config = vestibule_plugin_sdk::config()?;
        match config.misbehave.as_str() {
            "recurse" => Ok(Verdict::Drop(depth(event.id.len() as u64).to_string())),
            "trap" => panic!("told to trap on {}", event.id),
            "log-storm" => {
                for n in 0..100_000 {
                    log::info("Storm.", &[("n", &n.to_string())]);
                }
                Ok(Verdict::Keep)
            }
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
