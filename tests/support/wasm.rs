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

/// The TypeScript plugin in `plugins/typescript/NAME`, built with its own
/// tools: `npm ci` where the SDK's packages or the plugin's are not
/// installed (or the lock file changed since), then its `npm run build`;
/// its component. Builds of one process or several (the tests and the
/// benchmark suite) take turns on a lock file.
pub fn typescript_plugin(name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = workspace.join("plugins/typescript").join(name);
    let _turn = npm_lock(workspace);
    npm_install(&workspace.join("plugin-sdk/js"));
    npm_install(&dir);
    npm(&dir, &["run", "build"]);
    let component = dir.join("dist").join(format!("{name}.wasm"));
    assert!(
        component.exists(),
        "npm run build in {} wrote no {}",
        dir.display(),
        component.display()
    );
    component
}

/// `npm ci` in `dir` unless what its lock file names is installed already.
pub fn npm_install(dir: &Path) {
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&installed).is_none() || modified(&installed) < modified(&dir.join("package-lock.json")) {
        npm(dir, &["ci", "--no-audit", "--no-fund"]);
    }
}

/// Run npm with `args` in `dir`, failing with what it printed.
pub fn npm(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running npm (Node.js 20 with npm: examples/setup.sh --tests installs it): {e}"));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "npm {} in {}:\n{printed}",
        args.join(" "),
        dir.display()
    );
    printed
}

/// An exclusive lock on `target/npm.lock`, held until dropped.
fn npm_lock(workspace: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    std::fs::create_dir_all(&target).unwrap();
    let file = std::fs::File::create(target.join("npm.lock")).unwrap();
    // SAFETY: flock on a descriptor this function owns; released on close.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "locking {}", target.join("npm.lock").display());
    file
}
