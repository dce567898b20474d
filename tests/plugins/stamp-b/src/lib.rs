//! Stamps every event `version = "b"`: the second version of `stamp-a`.

const VERSION: &str = "b";

include!("../../stamp-a/src/stamp.rs");
