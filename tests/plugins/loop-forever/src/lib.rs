//! A filter that never returns: the host must cut it off at its deadline.

use vestibule_plugin_sdk::{Error, Event, Filter, NoConfig, Verdict, export};

struct LoopForever;

impl Filter for LoopForever {
    type Config = NoConfig;

    fn filter(event: Event, _: &NoConfig) -> Result<Verdict, Error> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(event.id.len() as u64));
        }
    }
}

export!(filter: LoopForever);
