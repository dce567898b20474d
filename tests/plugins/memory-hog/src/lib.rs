//! A filter that allocates without bound: the host must stop it at its
//! memory limit.

use vestibule_plugin_sdk::{Error, Event, Filter, NoConfig, Verdict, export};

struct MemoryHog;

impl Filter for MemoryHog {
    type Config = NoConfig;

    fn filter(_event: Event, _: &NoConfig) -> Result<Verdict, Error> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xAB; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export!(filter: MemoryHog);
