//! Makes each vendor's sample events (`examples/events/<vendor>/<type>.json`)
//! part of the binary, so `vestibule send` and the tests use the very files
//! the docs point to, and a new fixture needs no code change.

use std::path::Path;

fn main() {
    // Read when the script runs, not when it was compiled: a build script
    // compiled for one checkout may be run for another sharing its target
    // folder.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let events = Path::new(&manifest).join("../examples/events");
    println!("cargo::rerun-if-changed={}", events.display());
    let out = std::env::var("OUT_DIR").unwrap();
    for vendor in [
        "unifi-access",
        "unifi-access-ws",
        "verkada",
        "pdk",
        "unloc",
        "bas-ip",
        "standard-webhooks",
    ] {
        let dir = events.join(vendor);
        println!("cargo::rerun-if-changed={}", dir.display());
        let mut samples: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .filter_map(|path| {
                let name = path.file_name()?.to_str()?.strip_suffix(".json")?.to_string();
                let path = path.canonicalize().ok()?.display().to_string();
                Some((name, path))
            })
            .collect();
        samples.sort();
        let entries: Vec<String> = samples
            .iter()
            .map(|(name, path)| format!("({name:?}, include_str!({path:?}))"))
            .collect();
        let file = Path::new(&out).join(format!("{}_samples.rs", vendor.replace('-', "_")));
        std::fs::write(file, format!("[{}]", entries.join(",\n"))).unwrap();
    }
}
