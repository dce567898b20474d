//! The live console in a real browser (headless Chromium): events appear in
//! the live tail as they arrive, an event's story shows each plugin and
//! delivery, and a dead letter is retried with a click once the sink is back.

use std::time::Duration;

use crate::support::browser::Browser;
use crate::support::{self, Host, SECRET, Sink, get, plugin, post};

const TOKEN: &str = "console-test-token-5f2a9c";

fn config(sink: &Sink, token_file: &std::path::Path) -> String {
    format!(
        r#"
        [store]
        path = "data"

        [admin]
        token_file = "{token}"

        [[sources]]
        name = "office"
        vendor = "unifi-access"
        secret_file = "{{secret_file}}"

        [[plugins]]
        name = "front-doors"
        world = "filter"
        path = "{filter}"
        [plugins.config]
        doors = ["Front Door", "Lobby"]

        [[plugins]]
        name = "lights"
        world = "action"
        path = "{lights}"
        sinks = ["lights"]
        [plugins.config.entities]
        "Front Door" = "light.front_door"
        "Lobby" = "light.lobby"

        [[sinks]]
        name = "lights"
        kind = "http"
        url = "{url}"
        attempts = 2
        backoff = "50ms"
        [sinks.headers]
        Authorization = {{ secret_file = "{{secret_file}}", prefix = "Bearer " }}
        "#,
        token = token_file.display(),
        filter = plugin("door-filter").display(),
        lights = plugin("lights-on-unlock").display(),
        url = sink.url("/api/services/light/turn_on"),
    )
}

/// The page's text.
async fn text(browser: &mut Browser, selector: &str) -> String {
    let script = format!("(document.querySelector({selector:?}) || {{}}).innerText || ''");
    browser.eval(&script).await.as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_tails_events_tells_their_story_and_retries_a_dead_letter() {
    // Chromium is a heavy neighbour for the tests that time things.
    let _heavy = support::heavy();
    let sink = Sink::start().await;
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("admin-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    std::fs::set_permissions(&token_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let host = Host::start(&config(&sink, &token_file)).await;

    // The API needs the token; the page itself holds nothing and does not.
    let (status, _) = get(&host.url("/console/api/overview"), &[]).await;
    assert_eq!(status, 401);
    let (status, page) = get(&host.url("/console"), &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("/console/console.js") && !page.contains(TOKEN));
    // A page of another origin cannot press the buttons, even with the token.
    let from_elsewhere = [
        ("authorization", format!("Bearer {TOKEN}")),
        ("origin", "http://evil.example".to_string()),
    ];
    let (status, said) = post(&host.url("/console/api/dead-letters/1/retry"), &from_elsewhere, "").await;
    assert_eq!((status, said.contains("cross_origin")), (403, true), "{said}");

    let mut browser = Browser::start().await;
    browser.open(&host.url(&format!("/console#token={TOKEN}"))).await;
    browser
        .wait_for(
            "document.querySelector('#connection').textContent === 'live'",
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        browser.eval("location.hash").await,
        "",
        "the token leaves the address bar at once"
    );

    // A signed event appears in the live tail as it is processed.
    let (status, _) = host.post_unifi(support::unifi_unlock("Front Door")).await;
    assert_eq!(status, 200);
    let took = browser
        .wait_for(
            "document.querySelector('#tail tbody tr[data-seq]')",
            Duration::from_secs(2),
        )
        .await;
    println!("the event was in the live tail {took:?} after it was accepted");
    let row = text(&mut browser, "#tail tbody tr[data-seq]").await;
    for expected in [
        "office",
        "access.granted",
        "Front Door",
        "front-doors: kept",
        "lights: 1 command",
    ] {
        assert!(row.contains(expected), "{expected} in {row}");
    }

    // Its story: how it was verified, each plugin, the command delivered.
    browser.click("#tail tbody tr[data-seq]").await;
    browser
        .wait_for(
            "document.querySelector('#story .command-state.state-delivered')",
            Duration::from_secs(5),
        )
        .await;
    let story = text(&mut browser, "#story").await;
    for expected in [
        "unifi-access signature (as configured now)",
        "front-doors: kept",
        "lights: 1 command",
        "→ lights",
        "delivered",
    ] {
        assert!(story.contains(expected), "{expected} in {story}");
    }
    assert!(
        story.contains("light.front_door"),
        "the lights plugin's body shows at level 1: {story}"
    );

    // The sink goes down: the next command becomes a dead letter.
    sink.answer(503);
    let (status, _) = host.post_unifi(support::unifi_unlock("Lobby")).await;
    assert_eq!(status, 200);
    browser
        .wait_for(
            "document.querySelector('#dead-commands tbody tr[data-id]')",
            Duration::from_secs(15),
        )
        .await;
    let dead = text(&mut browser, "#dead-commands").await;
    assert!(dead.contains("lights") && dead.contains("exhausted"), "{dead}");
    assert!(dead.contains("503"), "the last error is shown: {dead}");

    // Back up; Retry delivers it.
    sink.answer(200);
    browser.click("#dead-commands button[data-action=retry]").await;
    browser
        .wait_for(
            "!document.querySelector('#dead-commands tbody tr[data-id]')",
            Duration::from_secs(15),
        )
        .await;
    // One delivery, two refused attempts, the retry.
    let received = sink.wait_for(Duration::from_secs(10), |r| r.len() >= 4).await;
    assert_eq!(received.len(), 4, "{received:#?}");
    assert!(received[3].body.contains("light.lobby"), "{received:#?}");
    browser.click("#tail tbody tr[data-seq]").await;
    browser
        .wait_for(
            "document.querySelector('#story').innerText.includes('delivered') && document.querySelector('#story').innerText.includes('Lobby')",
            Duration::from_secs(10),
        )
        .await;
    let story = text(&mut browser, "#story").await;
    assert!(
        story.contains("HTTP 503") || story.contains("503"),
        "the failed attempts: {story}"
    );

    // The tail filters by door, and pauses.
    let (status, _) = host.post_unifi(support::unifi_unlock("Garage")).await;
    assert_eq!(status, 200);
    browser
        .wait_for(
            "document.querySelectorAll('#tail tbody tr[data-seq]').length === 3",
            Duration::from_secs(5),
        )
        .await;
    browser
        .eval("(() => { const f = document.querySelector('#filter-door'); f.value = 'lobby'; f.dispatchEvent(new Event('input')); })()")
        .await;
    assert_eq!(
        browser
            .eval("document.querySelectorAll('#tail tbody tr[data-seq]').length")
            .await,
        1
    );
    browser
        .eval("(() => { const f = document.querySelector('#filter-door'); f.value = ''; f.dispatchEvent(new Event('input')); })()")
        .await;
    browser.click("#pause").await;
    assert_eq!(host.post_unifi(support::unifi_unlock("Side Door")).await.0, 200);
    browser
        .wait_for(
            "document.querySelector('#tail-note').innerText.includes('1 waiting')",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        browser
            .eval("document.querySelectorAll('#tail tbody tr[data-seq]').length")
            .await,
        3
    );
    browser.click("#pause").await;
    assert_eq!(
        browser
            .eval("document.querySelectorAll('#tail tbody tr[data-seq]').length")
            .await,
        4
    );

    // Plugins, sinks, sources and reloads are shown; a reload appears.
    let (status, _) = post(
        &host.url("/admin/reload"),
        &[("authorization", format!("Bearer {TOKEN}"))],
        "",
    )
    .await;
    assert_eq!(status, 200);
    browser
        .wait_for(
            "document.querySelector('#reloads tbody').innerText.includes('admin')",
            Duration::from_secs(10),
        )
        .await;
    let plugins = text(&mut browser, "#plugins").await;
    assert!(
        plugins.contains("front-doors") && plugins.contains("active"),
        "{plugins}"
    );
    let sinks = text(&mut browser, "#sinks").await;
    assert!(sinks.contains("lights") && sinks.contains("http"), "{sinks}");
    let sources = text(&mut browser, "#sources").await;
    assert!(
        sources.contains("office") && sources.contains("unifi-access"),
        "{sources}"
    );

    // Nothing secret reached the page.
    let html = browser.eval("document.documentElement.outerHTML").await;
    let html = html.as_str().unwrap();
    assert!(
        !html.contains(SECRET),
        "the signing secret (also the sink's token) is on the page"
    );
    assert!(!html.contains(TOKEN), "the admin token is on the page");

    let shot = browser.screenshot().await;
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    std::fs::write(&file, shot).unwrap();
    println!("screenshot: {}", file.display());
    drop(browser);
    host.stop().await;
}

/// The console's dead-event buttons are the command line's operations: an
/// event a plugin stopped is listed with its reason, counted in the metrics,
/// and runs again once the plugin is fixed.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_a_plugin_stopped_is_retried_from_the_console() {
    let sink = Sink::start().await;
    let filter = |behaviour: &str| {
        support::config::PluginTable::new("gate", "filter", "misbehave")
            .set("on_error", "dead-letter")
            .config("misbehave", behaviour)
            .render()
    };
    let config = |behaviour: &str| {
        format!(
            "[store]\npath = \"data\"\n[admin]\ntoken_file = \"{{secret_file}}\"\n{}",
            support::lights_config(&filter(behaviour), &sink.url("/on"))
        )
    };
    let host = Host::start(&config("trap")).await;
    let token = [("authorization", format!("Bearer {SECRET}"))];
    assert_eq!(host.post_unifi(support::unifi_unlock("Front Door")).await.0, 200);
    let mut listed = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, body) = get(&host.url("/console/api/dead-letters"), &token).await;
        assert_eq!(status, 200, "{body}");
        listed = serde_json::from_str(&body).unwrap();
        if !listed["events"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopped = &listed["events"][0];
    assert_eq!(
        (stopped["plugin"].as_str(), stopped["reason"].as_str()),
        (Some("gate"), Some("trap")),
        "{listed}"
    );
    let seq = stopped["seq"].as_i64().unwrap();
    let (_, metrics) = get(&host.url("/metrics"), &token).await;
    assert!(
        metrics.contains(r#"vestibule_dead_events_total{plugin="gate",reason="trap"} 1"#),
        "{metrics}"
    );

    // A retry needs the token, and a number.
    let (status, _) = post(&host.url(&format!("/console/api/dead-events/{seq}/retry")), &[], "").await;
    assert_eq!(status, 401);
    let (status, _) = post(&host.url("/console/api/dead-events/x/retry"), &token, "").await;
    assert_eq!(status, 400);
    let (status, _) = post(&host.url("/console/api/dead-events/999/retry"), &token, "").await;
    assert_eq!(status, 404);

    // Fix the plugin's config; the host reloads; retry from the console.
    let secret = host.config.parent().unwrap().join("unifi-secret").display().to_string();
    std::fs::write(&host.config, config("none").replace("{secret_file}", &secret)).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, said) = post(&host.url(&format!("/console/api/dead-events/{seq}/retry")), &token, "").await;
    assert_eq!(status, 200, "{said}");
    let received = sink.wait_for(Duration::from_secs(10), |r| !r.is_empty()).await;
    assert_eq!(received.len(), 1, "the retried event went through");
    let (_, body) = get(&host.url("/console/api/dead-letters"), &token).await;
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(listed["events"].as_array().unwrap().is_empty(), "{listed}");
    host.stop().await;
}
