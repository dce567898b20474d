//! Plugins in TypeScript: the SDK in `plugin-sdk/js` and the plugins in
//! `plugins/typescript/`, built with their own tools into components the
//! host runs as it runs Rust ones, deciding as the Rust ones do.

use std::path::{Path, PathBuf};

use crate::support::{
    check_refuses, golden, npm, npm_install, plugin, plugins_in, typescript_plugin, vestibule, workspace,
};

fn typescript_plugins() -> Vec<PathBuf> {
    plugins_in("typescript", "package.json")
}

#[test]
fn the_sdk_and_every_typescript_plugin_pass_their_own_tests() {
    let sdk = workspace().join("plugin-sdk/js");
    for dir in std::iter::once(sdk).chain(typescript_plugins()) {
        // Built first: the build installs what the tests need.
        if let Some(name) = dir
            .strip_prefix(workspace().join("plugins/typescript"))
            .ok()
            .and_then(|n| n.to_str())
        {
            typescript_plugin(name);
        }
        npm_install(&dir);
        let printed = npm(&dir, &["test"]);
        assert!(printed.contains("# fail 0"), "{}:\n{printed}", dir.display());
        let passed: usize = printed
            .lines()
            .find_map(|l| l.strip_prefix("# pass "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        assert!(passed >= 3, "{}: only {passed} tests ran:\n{printed}", dir.display());
    }
}

/// Each TypeScript plugin is a Rust reference plugin again: its component
/// does with the Rust plugin's golden events what they expect.
#[test]
fn every_typescript_plugin_does_what_its_rust_siblings_golden_events_expect() {
    let plugins = typescript_plugins();
    assert!(plugins.len() >= 2, "{plugins:?}");
    for dir in plugins {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let rust = workspace().join("plugins").join(&name);
        let events = golden(
            &typescript_plugin(&name),
            &rust.join("events"),
            &rust.join("example.toml"),
        );
        assert!(events >= 2, "{name}: {events} events");
    }
}

/// Every vendor's normalized events of the vendor tests (166 of them), as
/// `plugin run` reads events: with a receive time and a body.
fn every_vendors_events(into: &Path) -> usize {
    let mut count = 0;
    for vendor in std::fs::read_dir(workspace().join("tests/expected")).unwrap().flatten() {
        for file in std::fs::read_dir(vendor.path()).unwrap().flatten() {
            let mut event: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(file.path()).unwrap()).unwrap();
            // A time the vendor did not send is a placeholder there.
            let at = event["occurred_at"].as_i64().unwrap_or(1_763_805_600_000);
            event["occurred_at"] = at.into();
            event["received_at"] = (at + 120).into();
            event["raw"] = "{}".into();
            let name = format!(
                "{}--{}",
                vendor.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            );
            std::fs::write(into.join(name), event.to_string()).unwrap();
            count += 1;
        }
    }
    count
}

#[test]
fn the_rust_and_typescript_door_filters_decide_alike_on_every_vendors_events() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events");
    std::fs::create_dir(&events).unwrap();
    let count = every_vendors_events(&events);
    assert!(count >= 150, "{count} events");
    let config = dir.path().join("door-filter.toml");
    // Doors by name and by id, and two families of kinds: some events of
    // each vendor are kept, some dropped for their door, some for their kind.
    std::fs::write(
        &config,
        "doors = [\"Front Door\", \"1\", \"Main Gate\"]\nkinds = [\"access.*\", \"door.*\"]\n",
    )
    .unwrap();
    let run = |component: &Path, bless: bool| {
        let mut command = vestibule();
        command
            .args(["plugin", "run"])
            .arg(component)
            .arg("--events")
            .arg(&events)
            .arg("--config")
            .arg(&config);
        if bless {
            command.arg("--bless");
        }
        let output = command.output().unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{}:\n{printed}", component.display());
        printed
    };
    // What the Rust build decides is written beside each event; the
    // TypeScript build must decide the same, event by event.
    run(&plugin("door-filter"), true);
    let decisions: Vec<String> = std::fs::read_dir(&events)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".expected.json"))
        .map(|e| {
            let expected: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
            expected["decision"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(decisions.len(), count);
    let kept = decisions.iter().filter(|d| *d == "keep").count();
    let by_kind = decisions.iter().filter(|d| d.starts_with("drop: kind")).count();
    let by_door = decisions.iter().filter(|d| d.starts_with("drop: door")).count();
    assert!(
        kept >= 20 && by_kind >= 10 && by_door >= 20,
        "kept {kept}, by kind {by_kind}, by door {by_door}"
    );
    let printed = run(&typescript_plugin("door-filter"), false);
    assert!(printed.ends_with(&format!("{count} passed, 0 failed\n")), "{printed}");
}

#[test]
fn a_typescript_plugin_with_a_config_typo_is_refused_before_it_serves() {
    let component = typescript_plugin("door-filter");
    let stderr = check_refuses(&format!(
        "[[plugins]]\nname = \"doors\"\nworld = \"filter\"\npath = {:?}\n[plugins.config]\ndors = [\"Lobby\"]\n",
        component.display().to_string()
    ));
    assert!(
        stderr.contains("doors") && stderr.contains("unknown field `dors`, expected one of `doors`, `kinds`"),
        "{stderr}"
    );
}

/// What a new user does: `plugin new --lang typescript`, the scaffold's
/// three commands, then the host checks the component and serves it — a
/// signed event in, the plugin's command at the sink.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_typescript_action_builds_tests_and_serves_with_the_scaffolds_three_commands() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = new_plugin(dir.path(), "greeter", "typescript");
    let steps = readme_steps(&plugin_dir);
    assert_eq!(steps, ["npm install", "npm run build", "npm test"]);
    run_steps(&plugin_dir, &steps);
    an_action_serves(&plugin_dir.join("dist/greeter.wasm")).await;
}

/// `vestibule plugin new NAME --world action --lang LANG` in `parent`; its folder.
pub(crate) fn new_plugin(parent: &Path, name: &str, lang: &str) -> PathBuf {
    let output = vestibule()
        .args(["plugin", "new", name, "--world", "action", "--lang", lang, "--path"])
        .arg(parent)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains(&format!("vestibule plugin run dist/{name}.wasm")),
        "{said}"
    );
    parent.join(name)
}

/// The commands of the first `sh` block of the plugin's README, comments
/// left out.
pub(crate) fn readme_steps(dir: &Path) -> Vec<String> {
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    readme
        .lines()
        .skip_while(|l| *l != "```sh")
        .skip(1)
        .take_while(|l| *l != "```")
        .map(|l| l.split(" #").next().unwrap().trim().to_string())
        .collect()
}

/// Run each of `steps` with `sh -c` in `dir`, as a user pastes them.
pub(crate) fn run_steps(dir: &Path, steps: &[String]) {
    for step in steps {
        let output = std::process::Command::new("sh")
            .args(["-c", step])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "`{step}` in {}:\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The scaffold's action at `component`, as the host runs it: `vestibule
/// check` accepts it, and `vestibule serve` turns a signed UniFi event into
/// its chat command at the sink, with its log line.
pub(crate) async fn an_action_serves(component: &Path) {
    let sink = crate::support::Sink::start().await;
    let (_config_dir, config) = crate::support::write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n\
         [[sources]]\nname = \"office\"\nvendor = \"unifi-access\"\nsecret_file = \"{{secret_file}}\"\n\n\
         [[plugins]]\nname = \"greeter\"\nworld = \"action\"\npath = {:?}\nsinks = [\"chat\"]\n[plugins.config]\nsink = \"chat\"\n\n\
         [[sinks]]\nname = \"chat\"\nkind = \"http\"\nurl = \"{}\"\n",
        component.display().to_string(),
        sink.url("/chat"),
    ));
    let checked = vestibule()
        .args(["check", "--config"])
        .arg(&config.file)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    let host = crate::support::Process::start(&config.file);
    let body = crate::support::unifi_unlock("Lobby");
    let signed = crate::support::unifi_signature(crate::support::SECRET, crate::support::now(), &body);
    let url = format!("http://{}/ingest/office", host.addr());
    let (status, answer) = crate::support::post(&url, &signed, body).await;
    assert_eq!(status, 200, "{answer}");
    let received = sink
        .wait_for(std::time::Duration::from_secs(20), |r| !r.is_empty())
        .await;
    assert_eq!(received.len(), 1, "{:?}", host.log());
    let body: serde_json::Value = serde_json::from_str(&received[0].body).unwrap();
    let text = body["text"].as_str().unwrap_or_default();
    assert!(text.ends_with("came in at Lobby"), "{body}");
    assert!(host.log().iter().any(|l| l.contains("Announced.")), "{:?}", host.log());
}
