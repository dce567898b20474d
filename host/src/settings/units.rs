//! Durations (`"50ms"`, `"5s"`, `"2m"`) and sizes (`"1MiB"`, `"16MiB"`) as
//! people write them in config files. The parser is the plugin SDK's, the
//! same file compiled here, so the host's config and plugins' configs read
//! them alike.

#[path = "../../../plugin-sdk/src/units.rs"]
mod shared;

pub use shared::{ByteSize, Duration};
