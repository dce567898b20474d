//! The host's functions, as the rest of the SDK calls them. In a component
//! they are the WIT imports; compiled natively (`cargo test`) they are the
//! [`FakeHost`](crate::testing::FakeHost) of the test that is running, so a
//! plugin's logic can be unit-tested without WebAssembly.

#[cfg(target_arch = "wasm32")]
mod real {
    use crate::Command;
    use crate::bindings;
    use crate::bindings::host::Level;
    use crate::bindings::sinks::SendError;

    pub fn config() -> String {
        bindings::host::config()
    }

    pub fn log(level: Level, message: &str, fields: &[(String, String)]) {
        bindings::host::log(level, message, fields)
    }

    pub fn send(command: &Command, delay_ms: u64) -> Result<(), SendError> {
        if delay_ms == 0 {
            bindings::sinks::send(command)
        } else {
            bindings::sinks::send_later(command, delay_ms)
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use real::*;

#[cfg(not(target_arch = "wasm32"))]
pub use crate::testing::fake::{config, log, send};
