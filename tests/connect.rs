//! `vestibule connect` against fake vendor APIs (tests/support/vendor_api.rs)
//! and the real host: registering, the vendor then delivering with the
//! secret it holds, a second run changing nothing, drift found and
//! repaired, rotation without a refused event, removal, and the errors
//! that must change nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use vestibule::config::VendorKind;

use crate::support::process::{Process, vestibule};
use crate::support::vendor_api::{PDK_ORG, TOKEN, UNLOC_PROJECT, Vendor, VendorApi};
use crate::support::{free_addr, get};

const ADMIN_TOKEN: &str = "admin-token-for-connect-tests";

/// A folder with a config for one source and what it names.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    addr: std::net::SocketAddr,
}

impl Setup {
    /// `source` is the `[[sources]]` table; `{addr}` in it is the host's
    /// address, `{scheme}` its scheme.
    fn new(source: &str, tls: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let addr = free_addr();
        let mut server = format!("[server]\nlisten = \"{addr}\"\n");
        if tls {
            let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
            std::fs::write(dir.path().join("host.pem"), certified.cert.pem()).unwrap();
            std::fs::write(dir.path().join("host.key"), certified.signing_key.serialize_pem()).unwrap();
            server.push_str("[server.tls]\ncert_file = \"host.pem\"\nkey_file = \"host.key\"\n");
        }
        let token = dir.path().join("admin-token");
        std::fs::write(&token, ADMIN_TOKEN).unwrap();
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let scheme = if tls { "https" } else { "http" };
        let text = format!(
            "{server}[admin]\ntoken_file = \"admin-token\"\n[reload]\ndebounce = \"100ms\"\n{}",
            source.replace("{addr}", &addr.to_string()).replace("{scheme}", scheme)
        );
        let config = dir.path().join("vestibule.toml");
        std::fs::write(&config, text).unwrap();
        Setup { dir, config, addr }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `vestibule COMMAND ARGS --config …`: exit code, stdout, stderr.
    async fn run(&self, command: &str, args: &[&str]) -> (i32, String, String) {
        let output = tokio::process::Command::new(vestibule().get_program())
            .arg(command)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("VENDOR_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        println!("$ vestibule {command} {}\n{stdout}{stderr}", args.join(" "));
        (output.status.code().unwrap_or(-1), stdout, stderr)
    }

    /// `vestibule connect ARGS --config …`: exit code, stdout, stderr.
    async fn connect(&self, args: &[&str]) -> (i32, String, String) {
        self.run("connect", args).await
    }

    /// `vestibule check --config …`, which must succeed: its standard output.
    async fn check(&self) -> String {
        let (code, stdout, stderr) = self.run("check", &[]).await;
        assert_eq!(code, 0, "{stdout}{stderr}");
        stdout
    }

    /// It must succeed; its standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.connect(args).await;
        assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
        stdout
    }

    async fn status(&self, scheme: &str) -> Value {
        let url = format!("{scheme}://{}/admin/status", self.addr);
        let body = if scheme == "https" {
            https_get(&url).await
        } else {
            get(&url, &[("authorization", format!("Bearer {ADMIN_TOKEN}"))]).await.1
        };
        serde_json::from_str(&body).unwrap()
    }
}

/// `text` (a command's output) holds `part`.
fn says(text: &str, part: &str) {
    assert!(text.contains(part), "no {part:?} in:\n{text}");
}

/// The secret file's lines, and that it is private.
fn secret_lines(path: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} is private", path.display());
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

async fn https_get(url: &str) -> String {
    let uri: hyper::Uri = url.parse().unwrap();
    let tcp = tokio::net::TcpStream::connect((uri.host().unwrap(), uri.port_u16().unwrap()))
        .await
        .unwrap();
    let tls = vestibule::client_tls::config(None, true).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(uri.path())
        .header("host", uri.authority().unwrap().as_str())
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// Deliver a fresh event every 50 ms until `stop`; for each event, the
/// status each subscription got (two while an old and a new one overlap).
fn deliver_until(
    api: Arc<VendorApi>,
    body: impl Fn(usize) -> String + Send + 'static,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Vec<u16>>> {
    tokio::spawn(async move {
        let mut statuses = Vec::new();
        let mut i = 0;
        while !stop.load(Ordering::SeqCst) {
            statuses.push(api.deliver(&body(i)).await);
            i += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        statuses
    })
}

fn unifi_source(api: &VendorApi, events: &str) -> String {
    format!(
        r#"
[[sources]]
name = "office"
vendor = "unifi-access"
secret_file = "secrets/office"
[sources.connect]
api = "{}"
token_env = "VENDOR_TOKEN"
public_url = "http://{{addr}}/ingest/office"
events = {events}
ca_file = "controller.pem"
"#,
        api.url
    )
}

/// UniFi Access: the controller generates the secret; `connect` keeps it in
/// the secret file, and the host accepts what the controller signs with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unifi_registers_repairs_drift_rotates_and_removes() {
    let api = Arc::new(VendorApi::start(Vendor::Unifi).await);
    let setup = Setup::new(
        &unifi_source(&api, r#"["access.door.unlock", "access.doorbell.incoming"]"#),
        false,
    );
    std::fs::write(setup.path("controller.pem"), api.cert_pem.as_ref().unwrap()).unwrap();
    let secret_file = setup.path("secrets/office");

    // The plan, changing nothing.
    let plan = setup.ok(&["--dry-run"]).await;
    says(&plan, "create \"vestibule-office\" → http://");
    says(&plan, "(2 events)");
    assert!(api.subs().is_empty() && api.changes().is_empty());
    assert!(!secret_file.exists());

    // Register: the controller's secret lands in the file, never printed.
    let out = setup.ok(&[]).await;
    let subs = api.subs();
    assert_eq!(subs.len(), 1, "{subs:?}");
    let secret = subs[0]["secret"].as_str().unwrap().to_string();
    assert_eq!(secret_lines(&secret_file), std::slice::from_ref(&secret));
    assert!(!out.contains(&secret), "the secret is not printed: {out}");
    says(&out, "wrote the controller's secret");

    // The real host accepts what the controller signs with it.
    let host = Process::start(&setup.config);
    let unlock = |i: usize| crate::support::unifi_unlock("Front Door").replacen('{', &format!("{{\"n\":{i},"), 1);
    assert_eq!(api.deliver(&unlock(100_000)).await, [200]);

    // A second run changes nothing.
    let changes = api.changes().len();
    let again = setup.ok(&[]).await;
    says(&again, "keep   ");
    says(&again, "nothing to change");
    assert_eq!(
        api.changes().len(),
        changes,
        "no call but listings: {:?}",
        api.changes()
    );
    let status = setup.status("http").await;
    assert_eq!(status["sources"][0]["connect"]["in_sync"], json!(true), "{status}");

    // Someone edits it in the controller: --check finds it, exits non-zero.
    api.edit(|subs| {
        subs[0]["events"] = json!(["access.door.unlock", "access.device.dps_status"]);
        subs[0]["endpoint"] = json!("http://192.0.2.1/elsewhere");
    });
    let (code, report, stderr) = setup.connect(&["--check"]).await;
    assert_ne!(code, 0, "{report}");
    says(&report, "DRIFT: URL is http://192.0.2.1/elsewhere, not http://");
    says(&report, "DRIFT: events lack access.doorbell.incoming");
    says(&report, "DRIFT: events also hold access.device.dps_status");
    says(&stderr, "error: drift found in office");
    let status = setup.status("http").await;
    let check = &status["sources"][0]["connect"];
    assert_eq!(check["in_sync"], json!(false), "{status}");
    assert!(check["problems"].as_array().unwrap().len() >= 3, "{check}");

    // `connect` repairs it, and the check is clean again.
    let repaired = setup.ok(&[]).await;
    says(&repaired, "update ");
    let subs = api.subs();
    assert_eq!(subs.len(), 1);
    assert_eq!(
        subs[0]["events"],
        json!(["access.door.unlock", "access.doorbell.incoming"])
    );
    let clean = setup.ok(&["--check"]).await;
    says(&clean, "in sync");
    assert_eq!(
        setup.status("http").await["sources"][0]["connect"]["in_sync"],
        json!(true)
    );

    // Rotation: every event delivered across the switch is accepted.
    let stop = Arc::new(AtomicBool::new(false));
    let delivering = deliver_until(api.clone(), unlock, stop.clone());
    let rotated = setup.ok(&["--rotate", "--grace", "1s"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let statuses = delivering.await.unwrap();
    // While both endpoints deliver, the second copy of an event is refused
    // as a replay (same body, same second): the event itself was accepted.
    assert!(statuses.len() >= 10, "{statuses:?}");
    assert!(
        statuses.iter().all(|event| event.contains(&200)),
        "every event accepted across the rotation: {statuses:?}\n{rotated}"
    );
    assert!(
        statuses.iter().any(|event| event.len() == 2),
        "the endpoints overlapped: {statuses:?}"
    );
    let subs = api.subs();
    assert_eq!(subs.len(), 1, "the retiring endpoint is gone: {subs:?}");
    let new_secret = subs[0]["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert_eq!(secret_lines(&secret_file), std::slice::from_ref(&new_secret));
    assert_eq!(subs[0]["name"], "vestibule-office");
    says(&rotated, "the host reloaded");
    host.wait_for_log("source office: its secret file changed", Duration::from_secs(5));
    // The old secret is refused now.
    let body = unlock(99);
    let (status, _) = crate::support::post(
        &format!("http://{}/ingest/office", setup.addr),
        &crate::support::unifi_signature(&secret, crate::support::now(), &body),
        body,
    )
    .await;
    assert_eq!(status, 401);

    // A listing that lags: the create is answered "duplicate", and the
    // existing endpoint is taken over instead.
    api.edit(|subs| subs[0]["events"] = json!(["access.door.unlock"]));
    api.state.lock().unwrap().hide_next_list = true;
    let taken = setup.ok(&[]).await;
    says(&taken, "create ");
    says(
        &taken,
        "the vendor has it already (a22ee283-c91f-432b-9d0f-000000000002): updated that one instead",
    );
    assert_eq!(api.subs().len(), 1);
    assert_eq!(
        api.subs()[0]["events"],
        json!(["access.door.unlock", "access.doorbell.incoming"])
    );

    // Remove.
    let removed = setup.ok(&["--remove"]).await;
    says(&removed, "deleted ");
    assert!(api.subs().is_empty());
    let (code, report, _) = setup.connect(&["--check"]).await;
    assert_ne!(code, 0);
    says(&report, "DRIFT: the subscription is missing");
    host.kill();
}

/// A wrong token, an unreachable API and an untrusted certificate each stop
/// the run with one clear error, before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_an_unreachable_api_or_a_bad_certificate_change_nothing() {
    let api = VendorApi::start(Vendor::Unifi).await;
    let events = r#"["access.door.unlock"]"#;
    let check = |setup: &Setup, stderr: &str, expected: &str| {
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(expected), "{stderr}");
        assert!(!setup.path("secrets").exists(), "nothing written");
    };

    // Wrong token.
    let setup = Setup::new(
        &unifi_source(&api, events).replace("VENDOR_TOKEN", "WRONG_TOKEN"),
        false,
    );
    std::fs::write(setup.path("controller.pem"), api.cert_pem.as_ref().unwrap()).unwrap();
    let output = tokio::process::Command::new(vestibule().get_program())
        .args(["connect", "--config"])
        .arg(&setup.config)
        .env("WRONG_TOKEN", "not-the-token")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    check(
        &setup,
        &String::from_utf8_lossy(&output.stderr),
        "refused the API credentials (401): CODE_UNAUTHORIZED unauthorized",
    );

    // Unreachable.
    let nobody = free_addr();
    let setup = Setup::new(
        &unifi_source(&api, events).replace(&api.url, &format!("https://{nobody}")),
        false,
    );
    std::fs::write(setup.path("controller.pem"), api.cert_pem.as_ref().unwrap()).unwrap();
    let (code, _, stderr) = setup.connect(&[]).await;
    assert_ne!(code, 0);
    check(&setup, &stderr, &format!("cannot reach https://{nobody}: "));

    // A certificate nobody pinned: the system roots do not trust it.
    let setup = Setup::new(
        &unifi_source(&api, events).replace("ca_file = \"controller.pem\"\n", ""),
        false,
    );
    let (code, _, stderr) = setup.connect(&[]).await;
    assert_ne!(code, 0);
    check(&setup, &stderr, "its TLS certificate is not trusted");
    assert!(stderr.contains("ca_file"), "says how to fix it: {stderr}");

    assert!(api.subs().is_empty() && api.changes().is_empty(), "{:?}", api.changes());
}

/// ProdataKey: our secret and Basic credentials, stale subscriptions
/// removed, an expired one found and renewed, a rotation with no refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdk_registers_our_secret_removes_stale_ones_and_rotates() {
    let api = Arc::new(VendorApi::start(Vendor::Pdk).await);
    let source = format!(
        r#"
[[sources]]
name = "hq"
vendor = "pdk"
secret_file = "secrets/hq"
[sources.basic_auth]
username = "pdk"
password_file = "pdk-password"
[sources.connect]
api = "{}"
token_env = "VENDOR_TOKEN"
organization = "{PDK_ORG}"
public_url = "{{scheme}}://{{addr}}/ingest/hq"
events = ["door.request.allowed", "door.request.denied"]
ssl_verification = false
expires_at = "2027-06-01T00:00:00Z"
"#,
        api.url
    );
    let setup = Setup::new(&source, true);
    std::fs::write(setup.path("pdk-password"), "basic-password-1").unwrap();
    std::fs::set_permissions(
        setup.path("pdk-password"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // One of ours for an old URL, and someone else's.
    api.edit(|subs| {
        subs.push(json!({
            "id": "old-1", "name": "vestibule-hq", "url": "https://old.example.com/ingest/hq", "scope": "ouRecursive",
            "authentication": { "type": "None" }, "events": ["door.request.allowed"], "active": true,
            "sslVerification": true, "secrecyLevel": 1, "expiresAt": null, "userId": "u", "odometer": 5, "secret": "x"
        }));
        let mut second = subs[0].clone();
        second["id"] = json!("old-2");
        second["url"] = json!("https://older.example.com/ingest/hq");
        subs.push(second);
        subs.push(json!({
            "id": "theirs", "name": "Someone else", "url": "https://example.com", "scope": "ou",
            "authentication": { "type": "None" }, "events": ["ou.created"], "active": false,
            "sslVerification": true, "secrecyLevel": 1, "expiresAt": null, "userId": "u", "odometer": 1, "secret": null
        }));
    });
    let plan = setup.ok(&["--dry-run"]).await;
    says(
        &plan,
        "update old-1 \"vestibule-hq\": URL is https://old.example.com/ingest/hq",
    );
    says(
        &plan,
        "delete old-2 \"vestibule-hq\" → https://older.example.com/ingest/hq: ours, for an old URL",
    );
    says(&plan, "would write a new secret");

    let out = setup.ok(&[]).await;
    let secret = secret_lines(&setup.path("secrets/hq"));
    assert_eq!(secret.len(), 1);
    assert_eq!(secret[0].len(), 32);
    assert!(secret[0].chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(!out.contains(&secret[0]), "{out}");
    let subs = api.subs();
    assert_eq!(subs.len(), 2, "{subs:?}");
    let ours = subs.iter().find(|s| s["name"] == "vestibule-hq").unwrap();
    assert_eq!(ours["secret"], json!(secret[0]));
    assert_eq!(
        ours["authentication"],
        json!({ "type": "Basic", "user": "pdk", "password": "basic-password-1" })
    );
    assert_eq!(ours["sslVerification"], json!(false));
    assert!(
        subs.iter().any(|s| s["id"] == "theirs"),
        "others' subscriptions are left alone"
    );

    let host = Process::start(&setup.config);
    let body = |i: usize| {
        vestibule::cli::send::sample(VendorKind::Pdk, "door.request.allowed")
            .unwrap()
            .replacen("{", &format!("{{\"n\":{i},"), 1)
    };
    assert_eq!(api.deliver(&body(0)).await, [200], "ours (theirs is inactive)");

    // Expired behind our back.
    api.edit(|subs| {
        let ours = subs.iter_mut().find(|s| s["name"] == "vestibule-hq").unwrap();
        ours["expiresAt"] = json!("2026-01-01T00:00:00Z");
        ours["active"] = json!(false);
    });
    let (code, report, _) = setup.connect(&["--check"]).await;
    assert_ne!(code, 0);
    says(&report, "DRIFT: it is disabled");
    says(&report, "DRIFT: it expired at 2026-01-01T00:00:00Z");
    says(
        &report,
        "DRIFT: expiresAt is 2026-01-01T00:00:00Z, not 2027-06-01T00:00:00Z",
    );
    // `vestibule check` says what the last check found.
    let checked = setup.check().await;
    says(&checked, "source hq: drift at the vendor, as checked at ");
    says(&checked, "it is disabled");
    setup.ok(&[]).await;
    let ours = api.subs().into_iter().find(|s| s["name"] == "vestibule-hq").unwrap();
    assert_eq!(
        (ours["active"].clone(), ours["expiresAt"].clone()),
        (json!(true), json!("2027-06-01T00:00:00Z"))
    );
    assert!(setup.ok(&["--check"]).await.contains("in sync"));
    says(&setup.check().await, "source hq: in sync at the vendor, as checked at ");

    // Rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let delivering = deliver_until(api.clone(), body, stop.clone());
    setup.ok(&["--rotate", "--grace", "1s"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let statuses = delivering.await.unwrap();
    assert!(
        statuses.len() >= 10 && statuses.iter().all(|event| event == &[200]),
        "{statuses:?}"
    );
    let rotated = secret_lines(&setup.path("secrets/hq"));
    assert_eq!(rotated.len(), 1);
    assert_ne!(rotated[0], secret[0]);
    let ours = api.subs().into_iter().find(|s| s["name"] == "vestibule-hq").unwrap();
    assert_eq!(ours["secret"], json!(rotated[0]));
    host.kill();
}

/// Unloc (the password in the URL) and BAS-IP (our secret, headers,
/// timeout, retries): registered, delivered, and a second run changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unloc_and_bas_ip_register_deliver_and_stay_put() {
    let unloc = VendorApi::start(Vendor::Unloc).await;
    let bas_ip = VendorApi::start(Vendor::BasIp).await;
    let source = format!(
        r#"
[[sources]]
name = "gate"
vendor = "unloc"
[sources.basic_auth]
username = "unloc"
password_file = "secrets/gate"
[sources.connect]
api = "{}"
token_env = "VENDOR_TOKEN"
project = "{UNLOC_PROJECT}"
lock_id = "df50a61f-9e1f-4e1c-9e89-8395c908065a"
public_url = "https://{{addr}}/ingest/gate"

[[sources]]
name = "panel"
vendor = "bas-ip"
secret_file = "secrets/panel"
[sources.headers]
X-Building = "north"
[sources.connect]
api = "{}"
token_env = "VENDOR_TOKEN"
public_url = "https://{{addr}}/ingest/panel"
events = ["log.access_granted_by_valid_identifier", "log.door_was_opened"]
delivery_timeout = "5s"
max_retries = 2
"#,
        unloc.url, bas_ip.url
    );
    let setup = Setup::new(&source, true);
    let out = setup.ok(&[]).await;
    says(&out, &format!("create → https://{}/ingest/gate (1 event)", setup.addr));
    let password = secret_lines(&setup.path("secrets/gate"));
    let secret = secret_lines(&setup.path("secrets/panel"));
    assert!(!out.contains(&password[0]) && !out.contains(&secret[0]), "{out}");
    let hooks = unloc.subs();
    assert_eq!(hooks.len(), 1);
    assert_eq!(
        hooks[0]["url"],
        json!(format!("https://unloc:{}@{}/ingest/gate", password[0], setup.addr))
    );
    assert_eq!(hooks[0]["lockId"], "df50a61f-9e1f-4e1c-9e89-8395c908065a");
    let panels = bas_ip.subs();
    assert_eq!(panels.len(), 1);
    assert_eq!(panels[0]["secret"], json!(secret[0]));
    assert_eq!(panels[0]["headers"], json!(r#"{"X-Building":"north"}"#));
    assert_eq!(
        (panels[0]["timeout"].clone(), panels[0]["max_retries"].clone()),
        (json!(5000), json!(2))
    );
    assert_eq!(panels[0]["description"], "vestibule-panel");

    let host = Process::start(&setup.config);
    let sample = |vendor| vestibule::cli::send::sample(vendor, vestibule::vendors::get(vendor).samples()[0].0).unwrap();
    assert_eq!(unloc.deliver(sample(VendorKind::Unloc)).await, [200]);
    assert_eq!(bas_ip.deliver(sample(VendorKind::BasIp)).await, [200]);

    let (unloc_calls, bas_ip_calls) = (unloc.changes().len(), bas_ip.changes().len());
    let again = setup.ok(&[]).await;
    assert_eq!(again.matches("nothing to change").count(), 2, "{again}");
    assert_eq!(
        (unloc.changes().len(), bas_ip.changes().len()),
        (unloc_calls, bas_ip_calls)
    );

    // A disabled panel webhook is drift, and repaired.
    bas_ip.edit(|subs| subs[0]["status"] = json!("disabled"));
    let (code, report, _) = setup.connect(&["--check", "--source", "panel"]).await;
    assert_ne!(code, 0);
    says(&report, "DRIFT: it is disabled");
    setup.ok(&["--source", "panel"]).await;
    assert_eq!(bas_ip.subs()[0]["status"], "active");
    host.kill();
}

/// A Verkada source, `lobby`, its secret in `secrets/lobby`.
const VERKADA: &str = r#"
[[sources]]
name = "lobby"
vendor = "verkada"
secret_file = "secrets/lobby"
"#;

/// Post Verkada's first sample (made unique by `n`) to `lobby`, signed with
/// `secret`; the status.
async fn post_verkada(addr: std::net::SocketAddr, secret: &str, n: usize) -> u16 {
    let body = vestibule::vendors::get(VendorKind::Verkada).samples()[0]
        .1
        .replacen('{', &format!("{{\"n\":{n},"), 1);
    let signed = vestibule::vendors::get(VendorKind::Verkada).sign(secret, crate::support::now(), body.as_bytes());
    let headers: Vec<(&str, String)> = signed.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    crate::support::post(&format!("http://{addr}/ingest/lobby"), &headers, body)
        .await
        .0
}

/// Verkada has no API: `connect` writes a secret and says what to enter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verkada_gets_a_secret_and_instructions() {
    let setup = Setup::new(
        &format!("{VERKADA}[sources.connect]\npublic_url = \"https://vestibule.example.com/ingest/lobby\"\n"),
        false,
    );
    let out = setup.ok(&[]).await;
    let secret = secret_lines(&setup.path("secrets/lobby"));
    says(&out, "URL:    https://vestibule.example.com/ingest/lobby");
    says(&out, "secret: the first line of");
    assert!(!out.contains(&secret[0]), "{out}");
    let host = Process::start(&setup.config);
    assert_eq!(post_verkada(setup.addr, &secret[0], 0).await, 200);
    host.kill();
}

/// Without `[admin]` to call, a running host sees its secret files change
/// (as it sees the config change) and takes every line of them up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_takes_up_a_secret_file_changed_under_it() {
    let setup = Setup::new(VERKADA, false);
    let text = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(
        &setup.config,
        text.replace("[admin]\ntoken_file = \"admin-token\"\n", ""),
    )
    .unwrap();
    let file = setup.path("secrets/lobby");
    let (old, new) = ("old-secret-0123456789", "new-secret-9876543210");
    let secret = vestibule::settings::Secret::new;
    vestibule::connect::secrets::write(&file, &[&secret(old)]).unwrap();
    let host = Process::start(&setup.config);
    assert_eq!(post_verkada(setup.addr, new, 1).await, 401);
    vestibule::connect::secrets::write(&file, &[&secret(new), &secret(old)]).unwrap();
    host.wait_for_log("source lobby: its secret file changed", Duration::from_secs(10));
    assert_eq!(post_verkada(setup.addr, new, 2).await, 200);
    assert_eq!(
        post_verkada(setup.addr, old, 3).await,
        200,
        "the second line is still accepted"
    );
    host.kill();
}
