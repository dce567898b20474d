//! Plugins in Python: the SDK in `plugin-sdk/python` and the plugins in
//! `plugins/python/`, built with componentize-py into components the host
//! runs as it runs Rust ones, doing what the Rust ones do.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{check_refuses, golden, plugins_in, python, python_plugin, workspace};

fn python_plugins() -> Vec<PathBuf> {
    plugins_in("python", "pyproject.toml")
}

#[test]
fn the_sdk_and_every_python_plugin_pass_their_own_tests() {
    let python = python();
    for dir in std::iter::once(workspace().join("plugin-sdk/python")).chain(python_plugins()) {
        let output = Command::new(&python)
            .args(["-m", "pytest", "-q"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}:\n{printed}{}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let passed: usize = printed
            .lines()
            .find_map(|l| l.split(" passed").next().filter(|_| l.contains(" passed")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        assert!(passed >= 4, "{}: {passed} tests passed:\n{printed}", dir.display());
    }
}

/// Each Python plugin is a Rust reference plugin again: its component does
/// with the Rust plugin's golden events what they expect.
#[test]
fn every_python_plugin_does_what_its_rust_siblings_golden_events_expect() {
    let plugins = python_plugins();
    assert!(!plugins.is_empty());
    for dir in plugins {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let rust = workspace().join("plugins").join(&name);
        let events = golden(&python_plugin(&name), &rust.join("events"), &rust.join("example.toml"));
        assert!(events >= 2, "{name}: {events} events");
    }
}

#[test]
fn a_python_plugin_with_a_config_typo_is_refused_before_it_serves() {
    let component = python_plugin("directory");
    let stderr = check_refuses(&format!(
        "[[plugins]]\nname = \"people\"\nworld = \"enricher\"\npath = {:?}\n[plugins.config]\ncvs = \"id\"\n",
        component.display().to_string()
    ));
    assert!(
        stderr.contains("people") && stderr.contains("unknown field `cvs`, expected one of `key`, `csv`, `people`"),
        "{stderr}"
    );
}

/// What a new user does: `plugin new --lang python`, the scaffold's three
/// commands, then the host checks the component and serves it.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_python_action_builds_tests_and_serves_with_the_scaffolds_three_commands() {
    use crate::typescript::{an_action_serves, new_plugin, readme_steps, run_steps};
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = new_plugin(dir.path(), "greeter", "python");
    let steps = readme_steps(&plugin_dir);
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(
        steps[0].starts_with("python3 -m venv .venv && .venv/bin/pip install -e "),
        "{steps:?}"
    );
    assert_eq!(
        steps[1..],
        [".venv/bin/vestibule-plugin build", ".venv/bin/vestibule-plugin test"]
    );
    run_steps(&plugin_dir, &steps);
    an_action_serves(&plugin_dir.join("dist/greeter.wasm")).await;
}
