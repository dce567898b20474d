//! Building plugin packages for wasm32-wasip2, for the tests and the
//! benchmarks (which include this file).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The package names of the crates in these folders of the workspace (each
/// subfolder with a Cargo.toml), sorted.
pub fn packages_in(folders: &[&str]) -> Vec<String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut names = Vec::new();
    for folder in folders {
        for entry in std::fs::read_dir(workspace.join(folder)).unwrap() {
            let manifest = entry.unwrap().path().join("Cargo.toml");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
            let name = parsed["package"]["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no name", manifest.display()));
            names.push(name.to_string());
        }
    }
    names.sort();
    names
}

/// Build `packages` in release for wasm32-wasip2 with the workspace's cargo
/// and target folder; returns each package's `.wasm` by package name.
pub fn plugins(packages: &[&str]) -> HashMap<String, PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace).args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--message-format=json-render-diagnostics",
    ]);
    for package in packages {
        command.args(["-p", package]);
    }
    let output = command.output().expect("running cargo to build the plugins");
    assert!(
        output.status.success(),
        "building the plugins failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut built = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let package = message["target"]["name"].as_str().unwrap_or_default().replace('_', "-");
        for file in message["filenames"].as_array().into_iter().flatten() {
            let file = PathBuf::from(file.as_str().unwrap_or_default());
            if file.extension().is_some_and(|e| e == "wasm") {
                built.insert(package.clone(), file);
            }
        }
    }
    built
}
