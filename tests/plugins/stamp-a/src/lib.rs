//! Stamps every event `version = "a"`. With `stamp-b`, two versions of one
//! enricher: the reload tests swap them while events flow and check which
//! version each event went through.

const VERSION: &str = "a";

include!("stamp.rs");
