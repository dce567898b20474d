//! The `vestibule` command as a user runs it: `check` on the quick-start
//! config, and `serve` + `send` as two processes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{SECRET, plugin, vestibule, workspace};
use sha2::{Digest, Sha256};

/// The README's first command runs this config; it must stay valid.
#[test]
fn quickstart_config_checks_out() {
    // The quick start names the plugins where a default build puts them;
    // point it at wherever this build put them (CARGO_TARGET_DIR may move it).
    let built = plugin("door-filter").parent().unwrap().display().to_string();
    let text = std::fs::read_to_string(workspace().join("examples/quickstart.toml"))
        .unwrap()
        .replace("../target/wasm32-wasip2/release", &built);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("quickstart.toml"), text).unwrap();
    let check = || {
        let output = vestibule()
            .current_dir(dir.path())
            .args(["check", "--config", "quickstart.toml"])
            .env("UNIFI_SECRET", SECRET)
            .env("HA_TOKEN", "dev-token")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let sha = |package: &str| hex::encode(Sha256::digest(std::fs::read(plugin(package)).unwrap()))[..12].to_string();
    let expected = |origin: &str| {
        format!(
            "quickstart.toml: ok\n  1 source(s), 1 sink(s)\n  journal in data\n  \
             plugin front-doors (filter) sha256 {}: {origin}\n  plugin lights (action) sha256 {}: {origin}\n",
            sha("door-filter"),
            sha("lights-on-unlock"),
        )
    };
    assert_eq!(check(), expected("compiled"));
    // The second run finds what the first compiled in data/compiled/.
    assert_eq!(check(), expected("from the disk cache"));
}

#[test]
fn check_names_a_missing_secret() {
    let output = vestibule()
        .current_dir(workspace())
        .args(["check", "--config", "examples/quickstart.toml"])
        .env_remove("UNIFI_SECRET")
        .env("HA_TOKEN", "dev-token")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: examples/quickstart.toml: sources[0].secret_env: environment variable `UNIFI_SECRET` is not set\n"
    );
}

/// `serve` on a free port, `send` a signed sample to it, then SIGTERM: the
/// host answers 200, says it stopped, and exits 0.
#[test]
fn serve_then_send_then_stop() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let config = dir.path().join("vestibule.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [server]
            listen = "127.0.0.1:0"
            [[sources]]
            name = "office"
            vendor = "unifi-access"
            secret_file = "secret"
            [[plugins]]
            name = "front-doors"
            world = "filter"
            path = "{}"
            "#,
            plugin("door-filter").display()
        ),
    )
    .unwrap();
    let mut host = vestibule()
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(host.stderr.take().unwrap()).lines();
    let addr = log
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.split("Listening. addr=").nth(1).map(str::to_string))
        .expect("the host says where it listens");

    let send = |secret: &str| send_unlock(&addr, secret);
    let accepted = send(SECRET);
    let answer = String::from_utf8_lossy(&accepted.stdout);
    assert!(
        accepted.status.success(),
        "{answer}{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(answer.starts_with(r#"200 {"status":"accepted","id":""#), "{answer}");

    let wrong = send("wrong");
    assert_eq!(wrong.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&wrong.stdout),
        "401 {\"error\":\"signature_invalid\"}\n"
    );

    Command::new("kill")
        .args(["-TERM", &host.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    let status = host.wait().unwrap();
    assert!(status.success(), "{status}: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("Stopped.")), "{rest:?}");
}

/// `vestibule send` of the UniFi unlock sample to source `office` at `addr`,
/// signed with `secret`.
fn send_unlock(addr: &str, secret: &str) -> std::process::Output {
    vestibule()
        .args([
            "send",
            "--vendor",
            "unifi-access",
            "--event",
            "access.door.unlock",
            "--to",
        ])
        .arg(format!("http://{addr}/ingest/office"))
        .args(["--secret", secret])
        .output()
        .unwrap()
}

/// The vendor snippet in the README is a valid config.
#[test]
fn readme_vendor_snippet_parses() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let section = &readme[readme.find("## Vendors").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let snippet = &section[start..start + section[start..].find("```").unwrap()];
    let config = vestibule::Config::parse(snippet, Path::new("README.md")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.sources.len(), 7);
}

/// Secrets never show: not in `check`, not in the host's log at debug level
/// (wrong signatures, failed deliveries, reloads, a broken secret file), not
/// in the status endpoint, not in what a refused sender is told.
#[test]
fn secrets_never_show() {
    let secrets = [
        "signing-S3CRET-7f3a9c",
        "sink-token-S3CRET-b81e",
        "admin-token-S3CRET-44d0",
        "mqtt-password-S3CRET-12ab",
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signing"), secrets[0]).unwrap();
    std::fs::write(dir.path().join("admin"), secrets[2]).unwrap();
    let addr = crate::support::free_addr();
    let config = dir.path().join("vestibule.toml");
    let text = format!(
        r#"
        [server]
        listen = "{addr}"
        [admin]
        token_file = "admin"
        [[sources]]
        name = "office"
        vendor = "unifi-access"
        secret_file = "signing"
        [[plugins]]
        name = "lights"
        world = "action"
        path = "{lights}"
        sinks = ["lights"]
        [plugins.config.entities]
        "Front Door" = "light.front_door"
        [[sinks]]
        name = "lights"
        kind = "http"
        url = "http://127.0.0.1:9/api"
        attempts = 2
        backoff = "10ms"
        [sinks.headers]
        Authorization = {{ secret_env = "SINK_TOKEN", prefix = "Bearer " }}
        [[sinks]]
        name = "alarms"
        kind = "mqtt"
        url = "mqtt://127.0.0.1:9"
        topic = "alarms"
        username = "vestibule"
        password = {{ secret_env = "MQTT_PASSWORD" }}
        "#,
        lights = plugin("lights-on-unlock").display()
    );
    std::fs::write(&config, text).unwrap();
    let run = |args: &[&str]| {
        let output = vestibule()
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("SINK_TOKEN", secrets[1])
            .env("MQTT_PASSWORD", secrets[3])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let mut seen = vec![run(&["check"])];
    assert!(seen[0].contains(": ok"), "{}", seen[0]);

    let host = vestibule()
        .args(["serve", "--config"])
        .arg(&config)
        .env("SINK_TOKEN", secrets[1])
        .env("MQTT_PASSWORD", secrets[3])
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let host = crate::support::Process::adopt(host);
    let send = |secret: &str| String::from_utf8_lossy(&send_unlock(&addr.to_string(), secret).stdout).into_owned();
    seen.push(send(secrets[0]));
    assert!(seen[1].starts_with("200 "), "{}", seen[1]);
    seen.push(send("a-wrong-secret"));
    let status = |token: &str| {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let request = format!(
            "GET /admin/status HTTP/1.1\r\nHost: vestibule\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
        answer
    };
    seen.push(status(secrets[2]));
    assert!(seen.last().unwrap().contains("\"plugins\""), "{}", seen.last().unwrap());
    seen.push(status("a-wrong-token"));
    // A secret file that breaks: the reload error names the file, not its content.
    std::fs::write(dir.path().join("signing"), "").unwrap();
    host.signal("HUP");
    host.wait_for_log("Reload refused", std::time::Duration::from_secs(10));
    host.wait_for_log("Command dead-lettered", std::time::Duration::from_secs(10));
    seen.extend(host.log());
    drop(host);

    let everything = seen.join("\n");
    for secret in secrets {
        assert!(!everything.contains(secret), "`{secret}` shows in:\n{everything}");
    }
    assert!(everything.contains("signature_invalid") && everything.contains("is empty"));
}

/// `vestibule plugin new`: every world's crate passes its own test; made
/// inside a workspace whose members take it, it joins that workspace;
/// anywhere else it is a workspace of its own.
#[test]
fn plugin_new_makes_crates_that_pass_their_tests_in_or_out_of_a_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let workspace_root = dir.path().join("building");
    std::fs::create_dir_all(workspace_root.join("plugins")).unwrap();
    std::fs::write(
        workspace_root.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"plugins/*\"]\n",
    )
    .unwrap();
    let new = |name: &str, world: &str, parent: &Path, built_at: &str| {
        let output = vestibule()
            .args(["plugin", "new", name, "--world", world, "--path"])
            .arg(parent)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        // Where the component will really be built.
        let said = String::from_utf8_lossy(&output.stdout);
        let run = format!("vestibule plugin run {built_at}/wasm32-wasip2/release/{name}.wasm ");
        assert!(said.contains(&run), "{said}");
        parent.join(name)
    };
    let root_of = |crate_dir: &Path| {
        let output = Command::new(env!("CARGO"))
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .current_dir(crate_dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        std::path::PathBuf::from(metadata["workspace_root"].as_str().unwrap())
    };

    let member = new("gate", "filter", &workspace_root.join("plugins"), "../../target");
    assert_eq!(root_of(&member), workspace_root.canonicalize().unwrap());
    let alone = new("zones", "enricher", dir.path(), "target");
    assert_eq!(root_of(&alone), alone.canonicalize().unwrap());
    let refused = vestibule()
        .args(["plugin", "new", "zones", "--world", "enricher", "--path"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already exists"));
    // The SDK by version, with this machine's copy as the offline fallback.
    let manifest = std::fs::read_to_string(alone.join("Cargo.toml")).unwrap();
    let sdk = format!(
        r#"vestibule-plugin-sdk = {{ version = "{}", path = "#,
        env!("CARGO_PKG_VERSION")
    );
    assert!(manifest.contains(&sdk), "{manifest}");

    // Their own tests pass (sharing this workspace's lock and target, so
    // nothing is compiled twice).
    for crate_dir in [&member, &alone] {
        std::fs::copy(workspace().join("Cargo.lock"), root_of(crate_dir).join("Cargo.lock")).unwrap();
        let output = Command::new(env!("CARGO"))
            .arg("test")
            .current_dir(crate_dir)
            .env("CARGO_TARGET_DIR", workspace().join("target"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("test result: ok. 1 passed"), "{text}");
    }
}

/// `plugin run` treats a plugin as the host does, through the same
/// pipeline: a panic, a sleep past the deadline or an enricher rewriting
/// the event's id is the plugin's failure (exit 1), printing or opening a
/// socket is not — and it never aborts itself.
#[test]
fn plugin_run_reports_what_the_host_would() {
    let dir = tempfile::tempdir().unwrap();
    let event = workspace().join("examples/events/normalized/front-door-granted.json");
    let run = |component: &Path, config: Option<&str>| {
        let mut command = vestibule();
        command
            .arg("plugin")
            .arg("run")
            .arg(component)
            .arg("--event")
            .arg(&event);
        if let Some(config) = config {
            let file = dir.path().join("config.toml");
            std::fs::write(&file, config).unwrap();
            command.arg("--config").arg(file);
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stdout, stderr)
    };
    let misbehave = plugin("misbehave");
    let (code, said, _) = run(&misbehave, Some("misbehave = \"trap\""));
    assert!(said.contains("limit or failure: trap: "), "{said}");
    assert_eq!(code, Some(1), "{said}");
    let (code, said, stderr) = run(&misbehave, Some("misbehave = \"sleep\""));
    assert!(said.contains("limit or failure: timeout: "), "{said}");
    assert_eq!(code, Some(1));
    assert_eq!(stderr, "error: the plugin failed (timeout)\n");
    let (code, said, _) = run(&misbehave, Some("misbehave = \"print\""));
    assert!(said.contains("decision: keep"), "{said}");
    assert_eq!(code, Some(0));
    let (code, said, _) = run(&plugin("probe"), None);
    assert!(
        said.contains("decision: enriched") && said.contains("limit or failure: none"),
        "{said}"
    );
    assert_eq!(code, Some(0));
    let (code, said, _) = run(&plugin("leaky-enricher"), Some("leak = \"rewrite-id\""));
    assert!(
        said.contains("limit or failure: error: returned error: changed id, which enrichers may not change"),
        "{said}"
    );
    assert_eq!(code, Some(1));
    // A config the plugin refuses is refused before it runs, as in the host.
    let (code, _, stderr) = run(&misbehave, Some("misbehaviour = \"trap\""));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("the plugin `misbehave` refuses it: missing field `misbehave`"),
        "{stderr}"
    );
}

/// A config, plugin, secret or certificate that is a device or a FIFO is
/// refused by `vestibule check` with the file named — at once, not after
/// reading `/dev/zero` into memory or waiting on the FIFO.
#[test]
fn check_refuses_special_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let zero = dir.path().join("zero.wasm");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let source = "[[sources]]\nname = \"office\"\nvendor = \"unifi-access\"\nsecret_file = \"secret\"\n";
    let cases = [
        (
            "a plugin",
            format!("{source}[[plugins]]\nname = \"p\"\nworld = \"filter\"\npath = \"zero.wasm\"\n"),
            "zero.wasm: is not a regular file",
        ),
        (
            "a secret",
            source.replace("secret_file = \"secret\"", "secret_file = \"fifo\""),
            "sources[0].secret_file: cannot read secret file",
        ),
        (
            "a certificate",
            format!("[server.tls]\ncert_file = \"/dev/urandom\"\nkey_file = \"fifo\"\n{source}"),
            "server.tls.cert_file: /dev/urandom: is not a regular file",
        ),
    ];
    let check = |config: &Path| {
        let output = vestibule()
            .current_dir(dir.path())
            .args(["check", "--config"])
            .arg(config)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    for (what, text, says) in cases {
        let config = dir.path().join("vestibule.toml");
        std::fs::write(&config, text).unwrap();
        let (code, stderr) = check(&config);
        assert_eq!(code, Some(1), "{what}: {stderr}");
        assert!(stderr.contains(says), "{what}: `{says}` is not in {stderr}");
        assert!(stderr.contains("is not a regular file"), "{what}: {stderr}");
    }
    let (code, stderr) = check(&fifo);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("fifo: cannot read: is not a regular file"), "{stderr}");
}

/// A secret file others can read is worth a warning naming it, as ssh
/// gives for a private key; a private one is not.
#[test]
fn check_warns_of_a_secret_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let config = dir.path().join("vestibule.toml");
    std::fs::write(
        &config,
        "[[sources]]\nname = \"office\"\nvendor = \"unifi-access\"\nsecret_file = \"secret\"\n",
    )
    .unwrap();
    let check = |mode: u32| {
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
        let output = vestibule()
            .args(["check", "--config"])
            .arg(&config)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = check(0o644);
    assert!(
        stderr.contains("A secret file is readable by every user; make it private (chmod 600).")
            && stderr.contains(&format!("file={}", secret.display()))
            && stderr.contains("mode=644"),
        "{stderr}"
    );
    assert!(check(0o640).contains("readable by its group"));
    assert!(!check(0o600).contains("readable"), "a private file is fine");
}

/// The quick start in a temporary folder, with the plugins where this
/// build put them, edited by `edit`; the folder and the file.
fn quickstart(edit: impl Fn(String) -> String) -> (tempfile::TempDir, std::path::PathBuf) {
    let built = plugin("door-filter").parent().unwrap().display().to_string();
    let text = std::fs::read_to_string(workspace().join("examples/quickstart.toml"))
        .unwrap()
        .replace("../target/wasm32-wasip2/release", &built);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quickstart.toml");
    std::fs::write(&file, edit(text)).unwrap();
    (dir, file)
}

/// A typo in a filter's `[plugins.config]` is refused before the filter
/// serves, naming the plugin and giving its own message.
#[test]
fn check_refuses_a_plugin_config_the_plugin_refuses() {
    let (_dir, file) = quickstart(|text| text.replace("doors = [", "dors = ["));
    let output = vestibule()
        .args(["check", "--config"])
        .arg(&file)
        .env("UNIFI_SECRET", SECRET)
        .env("HA_TOKEN", "dev-token")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "quickstart.toml: plugins[0].config: the plugin `front-doors` refuses it: unknown field `dors`, expected `doors` or `kinds`"
        ),
        "{stderr}"
    );
}

/// `check` goes on past the first problem: a missing secret, a missing
/// plugin file and an unknown key are three lines, in one run.
#[test]
fn check_reports_every_error_it_finds() {
    let (_dir, file) = quickstart(|text| {
        text.replace("lights_on_unlock.wasm", "no_such_plugin.wasm")
            .replace("tolerance = \"300s\"", "tolerance = \"300s\"\ntolerence = \"1s\"")
    });
    let output = vestibule()
        .args(["check", "--config"])
        .arg(&file)
        .env_remove("UNIFI_SECRET")
        .env("HA_TOKEN", "dev-token")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("tolerence"))
        .unwrap()
        + 1;
    assert!(
        errors[0].contains(&format!("TOML parse error at line {line}, column 1")),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `tolerence`"), "{stderr}");
    assert!(
        errors[1].ends_with("sources[0].secret_env: environment variable `UNIFI_SECRET` is not set"),
        "{stderr}"
    );
    assert!(
        errors[2].contains("plugins[1].path: cannot read ") && errors[2].contains("no_such_plugin.wasm"),
        "{stderr}"
    );
}

/// One data folder, one host: a second `serve` on the same `[store] path`
/// refuses to start and names the first; the reading commands still work.
#[test]
fn a_second_host_on_the_same_data_folder_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let config = dir.path().join("vestibule.toml");
    let text = |addr: std::net::SocketAddr| {
        format!(
            "[server]\nlisten = \"{addr}\"\n[store]\npath = \"data\"\n\
             [[sources]]\nname = \"office\"\nvendor = \"unifi-access\"\nsecret_file = \"secret\"\n"
        )
    };
    std::fs::write(&config, text(crate::support::free_addr())).unwrap();
    let first = crate::support::Process::start(&config);
    // Another port, the same data folder.
    std::fs::write(&config, text(crate::support::free_addr())).unwrap();
    let second = vestibule().args(["serve", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("store.path: ")
            && stderr.contains("/data: is in use by vestibule pid ")
            && stderr.contains(" on "),
        "{stderr}"
    );
    let listed = vestibule()
        .args(["events", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    drop(first);
}

/// `send` says what went wrong in words a user can act on: an unknown
/// vendor lists them all, and nothing listening is said as such.
#[test]
fn send_explains_what_went_wrong() {
    let output = vestibule()
        .args(["send", "--vendor", "foo", "--event", "x", "--to", "http://127.0.0.1:1/"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for vendor in vestibule::config::VendorKind::ALL {
        assert!(stderr.contains(vendor.as_str()), "{vendor} is not listed: {stderr}");
    }
    let help = vestibule().args(["send", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("[possible values: unifi-access, verkada"));
    let help = vestibule().args(["plugin", "new", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("[possible values: filter, enricher, action]"));

    let nobody = crate::support::free_addr();
    let output = send_unlock(&nobody.to_string(), SECRET);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot connect to {nobody}: "))
            && stderr.contains("Connection refused")
            && stderr.contains("is a Vestibule host listening there?"),
        "{stderr}"
    );
}

/// The start-up line of a WebSocket source names the controller it dials,
/// not an ingest URL nobody serves.
#[test]
fn a_websocket_source_is_announced_with_its_controller() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), SECRET).unwrap();
    let controller = format!(
        "wss://{}/api/v1/developer/devices/notifications",
        crate::support::free_addr()
    );
    let config = dir.path().join("vestibule.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{}\"\n[[sources]]\nname = \"live\"\nvendor = \"unifi-access-ws\"\nurl = \"{controller}\"\ntoken_file = \"token\"\n",
            crate::support::free_addr()
        ),
    )
    .unwrap();
    let host = crate::support::Process::start(&config);
    let ready = host.wait_for_log("Source ready", std::time::Duration::from_secs(5));
    assert!(
        ready[0].contains("dialling the controller") && ready[0].contains(&format!("url={controller}")),
        "{ready:?}"
    );
    assert!(!ready[0].contains("/ingest/"), "{ready:?}");
}

/// The README's set-up block holds exactly two commands, the second is what
/// CI runs, and both go through the set-up script.
#[test]
fn readme_setup_commands_are_what_ci_runs() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let block = readme.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    let commands: Vec<&str> = block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(commands.len(), 2, "{commands:#?}");
    assert!(commands[0].starts_with("examples/setup.sh && "), "{}", commands[0]);
    assert!(commands[0].contains("serve --config examples/quickstart.toml"));
    assert_eq!(commands[1], "examples/setup.sh --tests && cargo test --no-fail-fast");
    let ci = std::fs::read_to_string(workspace().join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == commands[1]), "{ci}");
    assert!(
        !readme.contains("FIRST_BUILD"),
        "the first build's time is measured and written in"
    );
}

/// The set-up script names what it cannot install, one line each, and
/// fails: here rustup, on a PATH without it.
#[test]
fn setup_names_what_is_missing() {
    let output = Command::new("bash")
        .arg(workspace().join("examples/setup.sh"))
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("missing: rustup: install it from https://rustup.rs"),
        "{stderr}"
    );
}

/// The SDK builds as it would be published: from its own files alone.
#[test]
fn the_sdk_packages_as_it_would_be_published() {
    let output = Command::new(env!("CARGO"))
        .args(["package", "-p", "vestibule-plugin-sdk", "--allow-dirty"])
        .current_dir(workspace())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("Verifying vestibule-plugin-sdk"), "{said}");
}

/// Each SDK (Rust, TypeScript, Python) carries its own copy of the WIT contract so
/// that it can be published; the copy is the host's, file for file.
#[test]
fn the_sdks_carry_the_hosts_wit() {
    let names = |dir: &str| {
        let mut names: Vec<_> = std::fs::read_dir(workspace().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let files = names("wit");
    assert!(files.contains(&"worlds.wit".to_string()), "{files:?}");
    for copy in [
        "plugin-sdk/wit",
        "plugin-sdk/js/wit",
        "plugin-sdk/python/src/vestibule_plugin/wit",
    ] {
        assert_eq!(names(copy), files, "{copy}: the same files");
        for file in &files {
            let host = std::fs::read_to_string(workspace().join("wit").join(file)).unwrap();
            let sdk = std::fs::read_to_string(workspace().join(copy).join(file)).unwrap();
            assert!(host == sdk, "{copy}/{file} differs from wit/{file}: copy wit/ over it");
        }
    }
}

/// The host's top-level modules import each other without a cycle: the
/// event's path and its control plane read in one direction (comments and
/// tests aside).
#[test]
fn host_modules_import_each_other_without_a_cycle() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = workspace().join("host/src");
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let module = relative.split(['/', '.']).next().unwrap().to_string();
            if module == "lib" || module == "main" || !relative.ends_with(".rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for used in line.split("crate::").skip(1) {
                    let name: String = used.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    let is_module = name.chars().next().is_some_and(|c| c.is_lowercase());
                    if is_module && name != module && name != "error_chain" {
                        imports.entry(module.clone()).or_default().insert(name);
                    }
                }
            }
        }
    }
    // Depth-first: a module met again on the current path closes a cycle.
    fn visit(
        module: &str,
        imports: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if !done.insert(module.to_string()) {
            return None;
        }
        path.push(module.to_string());
        for next in imports.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, imports, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in imports.keys() {
        let cycle = visit(module, &imports, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "an import cycle: {}", cycle.unwrap().join(" -> "));
    }
    assert!(imports.len() > 10, "the modules were read: {imports:?}");
}
