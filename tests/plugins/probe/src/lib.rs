//! Reports, as attributes, what the sandbox lets it reach: the wall clock
//! (`clock`, ms), whether the monotonic clock moves (`monotonic`), the
//! environment (`env`), the file system (`files`) and the network (`net`).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use vestibule_plugin_sdk::{Enricher, Error, Event, NoConfig, export};

struct Probe;

impl Enricher for Probe {
    type Config = NoConfig;

    fn enrich(mut event: Event, _: &NoConfig) -> Result<Event, Error> {
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        event.set_attribute("clock", clock.to_string());
        let start = Instant::now();
        let mut spin = 0u64;
        while spin < 2_000_000 {
            spin = std::hint::black_box(spin + 1);
        }
        event.set_attribute("monotonic", if start.elapsed().is_zero() { "still" } else { "moves" });
        event.set_attribute("env", std::env::vars().count().to_string());
        let files = ["/", ".", "/etc/passwd"].map(|path| match std::fs::metadata(path) {
            Ok(_) => format!("{path}: readable"),
            Err(e) => format!("{path}: {:?}", e.kind()),
        });
        event.set_attribute("files", files.join("; "));
        let net = match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => "connected".to_string(),
            Err(e) => format!("{:?}", e.kind()),
        };
        event.set_attribute("net", net);
        Ok(event)
    }
}

export!(enricher: Probe);
