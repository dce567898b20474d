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
    let _turn = tool_lock(workspace, "npm");
    npm_install_locked(&workspace.join("plugin-sdk/js"));
    npm_install_locked(&dir);
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

/// `npm ci` in `dir` unless what its lock file names is installed already,
/// taking turns with every other npm install and build (two `npm ci` in one
/// folder at once would each delete what the other installs).
pub fn npm_install(dir: &Path) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let _turn = tool_lock(workspace, "npm");
    npm_install_locked(dir);
}

/// [`npm_install`], the caller holding the npm lock.
fn npm_install_locked(dir: &Path) {
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

/// The Python plugin in `plugins/python/NAME`, built with the SDK's
/// `vestibule-plugin build` (componentize-py) in the tests' virtual
/// environment (see [`python`]); its component.
pub fn python_plugin(name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = workspace.join("plugins/python").join(name);
    let python = python();
    let _turn = tool_lock(workspace, "python");
    let output = Command::new(python.parent().unwrap().join("vestibule-plugin"))
        .arg("build")
        .current_dir(&dir)
        .output()
        .expect("running vestibule-plugin build");
    assert!(
        output.status.success(),
        "vestibule-plugin build in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let component = dir.join("dist").join(format!("{name}.wasm"));
    assert!(component.exists(), "{} was not built", component.display());
    component
}

/// What the Python tests install, pinned: the SDK from this checkout (with
/// its engine, componentize-py) and pytest.
const PYTHON_REQUIREMENTS: &[&str] = &["-e", "plugin-sdk/python", "pytest==9.2.0"];

/// The tests' Python: a virtual environment in the target folder
/// (`tools/python`) with [`PYTHON_REQUIREMENTS`], made once and again when
/// they change; its interpreter.
pub fn python() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let venv = target.join("tools/python");
    let interpreter = venv.join("bin/python");
    let _turn = tool_lock(workspace, "python");
    let marker = venv.join("vestibule-requirements");
    let wanted = PYTHON_REQUIREMENTS.join(" ");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return interpreter;
    }
    let run = |command: &mut Command| {
        let output = command.current_dir(workspace).output().unwrap_or_else(|e| {
            panic!("running {command:?} (Python 3.11 with venv: examples/setup.sh --tests installs it): {e}")
        });
        assert!(
            output.status.success(),
            "{command:?}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv));
    run(Command::new(&interpreter)
        .args(["-m", "pip", "install", "--quiet"])
        .args(PYTHON_REQUIREMENTS));
    std::fs::write(&marker, wanted).unwrap();
    interpreter
}

/// An exclusive lock on `target/NAME.lock`, held until dropped: builds
/// with one tool, from one process or several, take turns.
fn tool_lock(workspace: &Path, name: &str) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    std::fs::create_dir_all(&target).unwrap();
    let path = target.join(format!("{name}.lock"));
    let file = std::fs::File::create(&path).unwrap();
    // SAFETY: flock on a descriptor this function owns; released on close.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "locking {}", path.display());
    file
}
