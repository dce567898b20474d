//! What the journal interface promises, proven against both backends with
//! the same test bodies: SQLite in a data folder, and NATS JetStream on a
//! real nats-server. Each body talks to the store only through
//! `store::start` (the running host's `Journal` and its feeds) and
//! `store::records` (what the command line reads and changes).

use std::sync::Arc;
use std::time::Duration;

use vestibule::Config;
use vestibule::event::Event;
use vestibule::store::{self, Appended, DeliveryUpdate, Journal, JournalFeeds, NewCommand, Processed, Records};
use vestibule::wit::sinks::Command;

use crate::support::nats::Nats;

/// A store to test: its config, and what it lives in.
struct Backend {
    name: &'static str,
    config: Config,
    _dir: tempfile::TempDir,
    nats: Option<Nats>,
}

impl Backend {
    fn sqlite() -> Backend {
        Backend::with("sqlite", "[store]\npath = \"data\"\n", None)
    }

    /// A lone nats-server; `ack_wait` short, so that what a stopped node
    /// held is seen again soon.
    fn nats() -> Backend {
        let nats = Nats::start(1);
        let text = format!(
            "[store]\nkind = \"nats\"\n{}\npartitions = 2\nack_wait = \"2s\"\n",
            nats.servers_toml()
        );
        Backend::with("nats", &text, Some(nats))
    }

    fn with(name: &'static str, text: &str, nats: Option<Nats>) -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vestibule.toml");
        std::fs::write(&file, text).unwrap();
        let config = Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
        Backend {
            name,
            config,
            _dir: dir,
            nats,
        }
    }

    async fn start(&self) -> (Arc<dyn Journal>, JournalFeeds) {
        store::start(&self.config, Default::default())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    fn records(&self) -> Box<dyn Records> {
        store::records(&self.config).unwrap()
    }
}

/// The lone nats-server's URL, for a test that writes to it as an earlier
/// version did.
impl Backend {
    fn nats_url(&self) -> String {
        self.nats.as_ref().expect("a NATS backend").urls()[0].clone()
    }
}

fn both() -> [Backend; 2] {
    [Backend::sqlite(), Backend::nats()]
}

fn event(id: &str, door: &str) -> Event {
    let mut event: Event =
        serde_json::from_str(include_str!("../examples/events/normalized/front-door-granted.json")).unwrap();
    event.id = id.into();
    event.received_at = vestibule::time::now_ms();
    event.door.as_mut().unwrap().name = Some(door.into());
    event
}

fn command(key: &str, door: &str, delay_ms: u64) -> NewCommand {
    NewCommand {
        plugin: "lights".into(),
        index: 0,
        key: key.into(),
        door: door.into(),
        command: Command {
            sink: "lights".into(),
            body: format!("{{\"key\":\"{key}\"}}"),
            headers: Vec::new(),
        },
        delay_ms,
    }
}

/// What one action emitting `commands` did with event `seq`: each has its
/// place among them.
fn outcome(seq: i64, received_at: i64, commands: Vec<NewCommand>) -> Processed {
    Processed {
        seq,
        steps: Vec::new(),
        commands: commands
            .into_iter()
            .enumerate()
            .map(|(index, command)| NewCommand { index, ..command })
            .collect(),
        dead_letter: None,
        received_at,
    }
}

async fn next<T>(feed: &mut tokio::sync::mpsc::UnboundedReceiver<T>, what: &str, backend: &str) -> T {
    tokio::time::timeout(Duration::from_secs(15), feed.recv())
        .await
        .unwrap_or_else(|_| panic!("{backend}: no {what} handed out within 15s"))
        .unwrap()
}

/// Until `done` holds, for up to 10 s.
async fn eventually<T>(backend: &str, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(value) = f() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{backend}: {what} not within 10s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_within_the_window_is_a_duplicate() {
    for backend in both() {
        let (journal, _feeds) = backend.start().await;
        let first = journal.append(event("e-1", "Lobby")).await.unwrap();
        assert!(matches!(first, Appended::Accepted { .. }), "{}", backend.name);
        assert_eq!(
            journal.append(event("e-1", "Lobby")).await.unwrap(),
            Appended::Duplicate,
            "{}",
            backend.name
        );
        let mut other = event("e-1", "Lobby");
        other.source = "another-source".into();
        assert!(
            matches!(journal.append(other).await.unwrap(), Appended::Accepted { .. }),
            "{}: the key is (source, id)",
            backend.name
        );
        journal.close().await;
    }
}

/// An event is handed to the dispatcher once; its outcome's commands reach
/// the outbox in the order they were emitted; what was delivered shows in
/// `events show`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_runs_once_and_its_commands_are_handed_out_in_order() {
    for backend in both() {
        let (journal, mut feeds) = backend.start().await;
        let Appended::Accepted { .. } = journal.append(event("e-2", "Lobby")).await.unwrap() else {
            panic!("{}: accepted", backend.name);
        };
        let queued = next(&mut feeds.events, "event", backend.name).await;
        assert_eq!((queued.event.id.as_str(), queued.run), ("e-2", 0), "{}", backend.name);
        let commands = vec![command("k-1", "Lobby", 0), command("k-2", "Lobby", 0)];
        journal.processed(outcome(queued.seq, queued.event.received_at, commands));
        let first = next(&mut feeds.commands, "command", backend.name).await;
        assert_eq!(first.key, "k-1", "{}", backend.name);
        journal.attempted();
        journal.delivery(first.id, DeliveryUpdate::Delivered { attempts: 1 });
        let second = next(&mut feeds.commands, "command", backend.name).await;
        assert_eq!(second.key, "k-2", "{}", backend.name);
        journal.attempted();
        journal.delivery(second.id, DeliveryUpdate::Delivered { attempts: 1 });
        eventually(backend.name, "the backlog empties", || {
            (journal.backlog() == 0 && journal.unattempted() == 0).then_some(())
        })
        .await;

        let records = backend.records();
        let runs = eventually(backend.name, "both commands shown delivered", || {
            let runs = records.event("e-2").ok()?;
            let delivered = runs.first()?.2.iter().filter(|c| c.state == "delivered").count();
            (delivered == 2).then_some(runs)
        })
        .await;
        assert_eq!(runs.len(), 1, "{}: one run", backend.name);
        let (row, json, commands) = &runs[0];
        assert_eq!(
            (row.event_id.as_str(), row.state.as_str()),
            ("e-2", "done"),
            "{}",
            backend.name
        );
        assert!(json.contains("\"e-2\""), "{}", backend.name);
        let keys: Vec<&str> = commands.iter().map(|c| c.idempotency_key.as_str()).collect();
        assert_eq!(keys, ["k-1", "k-2"], "{}", backend.name);
        let listed = records.events(None, 10).unwrap();
        assert_eq!(listed.len(), 1, "{}: {listed:?}", backend.name);
        journal.close().await;
    }
}

/// What a stopped host left unfinished — an event not processed, a command
/// between retries — is handed out at the next start, with its attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_left_unfinished_is_handed_out_at_the_next_start() {
    for backend in both() {
        let (journal, mut feeds) = backend.start().await;
        // e-3 emits a command that fails once; e-4 is never processed.
        journal.append(event("e-3", "Lobby")).await.unwrap();
        let e3 = next(&mut feeds.events, "event", backend.name).await;
        journal.processed(outcome(e3.seq, e3.event.received_at, vec![command("k-3", "Lobby", 0)]));
        journal.append(event("e-4", "Hall")).await.unwrap();
        let e4 = next(&mut feeds.events, "event", backend.name).await;
        assert_eq!(e4.event.id, "e-4", "{}", backend.name);
        let pending = next(&mut feeds.commands, "command", backend.name).await;
        let now = vestibule::time::now_ms();
        journal.attempted();
        journal.delivery(
            pending.id,
            DeliveryUpdate::Retry {
                attempts: 1,
                first_attempt_at: now,
                next_at: now + 1_000,
                error: "sink down".into(),
            },
        );
        eventually(backend.name, "e-3 recorded", || (journal.backlog() == 1).then_some(())).await;
        // Recorded retries are written with the next outcome or by then.
        tokio::time::sleep(Duration::from_millis(300)).await;
        journal.close().await;
        drop(feeds);

        let (journal, mut feeds) = backend.start().await;
        let again = next(&mut feeds.events, "event", backend.name).await;
        assert_eq!(
            again.event.id, "e-4",
            "{}: the unprocessed event, and only it",
            backend.name
        );
        let command = next(&mut feeds.commands, "command", backend.name).await;
        assert_eq!(command.key, "k-3", "{}", backend.name);
        assert_eq!(command.attempts, 1, "{}: the count goes on", backend.name);
        assert_eq!(command.next_at, now + 1_000, "{}: so does the wait", backend.name);
        journal.close().await;
    }
}

/// A delayed command waits on its own; once a dead letter and retried, it
/// is an ordinary command again; a dropped dead letter is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_retried_and_dropped() {
    for backend in both() {
        let (journal, mut feeds) = backend.start().await;
        journal.append(event("e-5", "Lobby")).await.unwrap();
        let queued = next(&mut feeds.events, "event", backend.name).await;
        let received_at = vestibule::time::now_ms() - 60_000;
        journal.processed(outcome(
            queued.seq,
            received_at,
            vec![command("k-5", "Lobby", 1_000), command("k-6", "Hall", 0)],
        ));
        let mut dead = Vec::new();
        for _ in 0..2 {
            let pending = next(&mut feeds.commands, "command", backend.name).await;
            journal.attempted();
            dead.push(pending.key.clone());
            journal.delivery(
                pending.id,
                DeliveryUpdate::Dead {
                    attempts: 1,
                    reason: store::DeadReason::Exhausted,
                    error: format!("{} failed", pending.key),
                },
            );
        }
        dead.sort();
        assert_eq!(dead, ["k-5", "k-6"], "{}", backend.name);
        let mut records = backend.records();
        let letters = eventually(backend.name, "two dead letters", || {
            let letters = records.dead_letters().ok()?;
            (letters.len() == 2).then_some(letters)
        })
        .await;
        let k6 = letters.iter().find(|l| l.idempotency_key == "k-6").unwrap();
        assert_eq!(k6.dead_reason, Some(store::DeadReason::Exhausted), "{}", backend.name);
        assert_eq!(k6.last_error.as_deref(), Some("k-6 failed"), "{}", backend.name);
        let k5 = letters.iter().find(|l| l.idempotency_key == "k-5").unwrap().id;
        let k6 = k6.id;

        assert_eq!(records.retry_dead_letters(&[k5]).unwrap(), 1, "{}", backend.name);
        let again = next(&mut feeds.commands, "command", backend.name).await;
        assert_eq!(again.key, "k-5", "{}: the key the sink saw before", backend.name);
        assert!(
            !again.delayed(),
            "{}: retried, it is sent now and in order",
            backend.name
        );
        assert_eq!(again.attempts, 0, "{}: a fresh set of attempts", backend.name);

        assert_eq!(records.drop_dead_letters(&[k6]).unwrap(), 1, "{}", backend.name);
        let left = records.dead_letters().unwrap();
        assert!(left.is_empty(), "{}: {left:?}", backend.name);
        journal.close().await;
    }
}

/// A replay is a new run of each event since a time, handed out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_runs_events_again_as_a_new_run() {
    for backend in both() {
        let (journal, mut feeds) = backend.start().await;
        let since = vestibule::time::now_ms() - 1_000;
        journal.append(event("e-7", "Lobby")).await.unwrap();
        let queued = next(&mut feeds.events, "event", backend.name).await;
        journal.processed(outcome(queued.seq, queued.event.received_at, Vec::new()));
        eventually(backend.name, "processed", || (journal.backlog() == 0).then_some(())).await;
        // Recorded before the replay reads the journal.
        tokio::time::sleep(Duration::from_millis(300)).await;

        let mut records = backend.records();
        assert_eq!(records.replay(since, None).unwrap(), 1, "{}", backend.name);
        let replayed = next(&mut feeds.events, "replayed event", backend.name).await;
        assert_eq!(
            (replayed.event.id.as_str(), replayed.run),
            ("e-7", 1),
            "{}",
            backend.name
        );
        journal.processed(outcome(replayed.seq, replayed.event.received_at, Vec::new()));
        let runs = eventually(backend.name, "two runs shown", || {
            let runs = records.event("e-7").ok()?;
            (runs.len() == 2).then_some(runs)
        })
        .await;
        let numbers: Vec<i64> = runs.iter().map(|r| r.0.run).collect();
        assert_eq!(numbers, [0, 1], "{}", backend.name);
        journal.close().await;
    }
}

/// The key derived event ids are made with stays the same from one start
/// to the next (and, in a cluster, from one node to the next).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_key_survives_a_restart() {
    for backend in both() {
        let (journal, _feeds) = backend.start().await;
        let first = journal.id_key().derive(&[b"door", b"4711"]);
        journal.close().await;
        let (journal, _feeds) = backend.start().await;
        assert_eq!(journal.id_key().derive(&[b"door", b"4711"]), first, "{}", backend.name);
        journal.close().await;
    }
}

/// A data folder the schema-3 journal left behind when its host was killed
/// (`tests/fixtures/journal-v1`, written by that release) is upgraded in
/// place when it is first opened: the command line prints what that release
/// printed, word for word; the events and commands it left pending are
/// processed and delivered (a retried command with the idempotency key it
/// had); retried dead letters and stopped events go through; nothing runs
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_folder_of_the_previous_schema_is_upgraded_in_place() {
    let fixture = crate::support::workspace().join("tests/fixtures/journal-v1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    for file in std::fs::read_dir(fixture.join("data")).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), dir.path().join("data").join(file.file_name())).unwrap();
    }
    let sink = crate::support::Sink::start().await;
    let secret = dir.path().join("unifi-secret");
    std::fs::write(&secret, crate::support::SECRET).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // The fixture's source, filter and action; a sink that answers.
    let filter = crate::support::config::PluginTable::new("front-doors", "filter", "door-filter")
        .config("doors", vec!["Front Door", "Lobby"]);
    let text = crate::support::lights_config(&filter.render(), &sink.url("/api/services/light/turn_on"))
        .replace("[server]", "[server]\nlisten = \"127.0.0.1:0\"")
        .replace("{secret_file}", &secret.display().to_string());
    let config = dir.path().join("vestibule.toml");
    std::fs::write(&config, format!("{text}\n[store]\npath = \"data\"\n")).unwrap();
    let expected = |name: &str| std::fs::read_to_string(fixture.join(name)).unwrap();
    for (args, file) in [
        (&["events", "list"][..], "events-list.txt"),
        (&["dead-letters", "list"][..], "dead-letters-list.txt"),
        (
            &["events", "show", "aba67d3b818903a1439b593d8081c59b"][..],
            "events-show-aba67d3b81890.txt",
        ),
    ] {
        assert_eq!(crate::support::cli(args, &config), expected(file), "{args:?}");
    }

    let host = crate::support::Process::start(&config);
    // Each entity switched on, and how often. Commands the earlier host
    // stored go out as stored (the fixture's Front Door light was
    // `light.front_porch`); events run now get today's config's.
    let entities = |received: &[crate::support::Received]| {
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for r in received {
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            *seen.entry(body["entity_id"].as_str().unwrap().to_string()).or_default() += 1;
        }
        seen.into_iter().collect::<Vec<_>>()
    };
    let counts = |door: usize, porch: usize, lobby: usize| {
        vec![
            ("light.front_door".to_string(), door),
            ("light.front_porch".to_string(), porch),
            ("light.lobby".to_string(), lobby),
        ]
    };
    // Stored commands 3–6 (two at each door); events 11–14 (3 at the
    // Lobby, 1 at the Front Door).
    let received = sink.wait_for(Duration::from_secs(30), |r| r.len() >= 8).await;
    assert_eq!(entities(&received), counts(1, 2, 5), "{received:#?}");
    assert!(
        received
            .iter()
            .any(|r| r.headers["idempotency-key"] == "42e917d41bc9e7c498abecf2f16904fa"),
        "command 3 keeps its key"
    );
    let retried = crate::support::cli(&["dead-letters", "retry", "--all"], &config);
    assert!(
        retried.starts_with("2 command(s) back in the outbox, 2 event(s) back in the journal"),
        "{retried}"
    );
    // Dead letters 1 (Front Door) and 2 (Lobby), stored; events 4 (Lobby)
    // and 5 (Front Door), run now.
    let received = sink.wait_for(Duration::from_secs(30), |r| r.len() >= 12).await;
    assert_eq!(entities(&received), counts(2, 3, 7), "{received:#?}");
    let list = eventually("sqlite", "every event done", || {
        let list = crate::support::cli(&["events", "list"], &config);
        (!list.contains("pending") && !list.contains("dead ")).then_some(list)
    })
    .await;
    assert_eq!(list.lines().count(), 15, "{list}");
    // Nothing more arrives: no event or command went out twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 12);
    host.kill();
}

/// An event an earlier version journaled, on `<prefix>.events.<partition>`
/// without an id subject, is still handed out after an upgrade, and
/// `events show` finds it by its id once it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_an_earlier_version_journaled_is_processed_and_found() {
    let backend = Backend::nats();
    let (journal, mut feeds) = backend.start().await;
    let client = async_nats::connect(backend.nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let legacy = event("legacy-1", "Lobby");
    for p in 0..2 {
        // One on each partition's subject of the earlier layout.
        let mut copy = legacy.clone();
        copy.id = format!("legacy-{p}");
        let payload = serde_json::to_vec(&copy).unwrap();
        js.publish(format!("VESTIBULE.events.{p}"), payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let mut handed = Vec::new();
    for _ in 0..2 {
        let queued = next(&mut feeds.events, "event journaled by an earlier version", "nats").await;
        journal.processed(outcome(queued.seq, queued.event.received_at, Vec::new()));
        handed.push(queued.event.id);
    }
    handed.sort();
    assert_eq!(handed, ["legacy-0", "legacy-1"]);
    let records = backend.records();
    let shown = eventually("nats", "the legacy event shown as done", || {
        let runs = tokio::task::block_in_place(|| records.event("legacy-1")).ok()?;
        (runs.first()?.0.state == "done").then_some(runs)
    })
    .await;
    assert_eq!(shown[0].0.event_id, "legacy-1");
    assert_eq!(shown[0].0.door, "Lobby");
    journal.close().await;
}

/// A partition an earlier version read through a durable consumer
/// (`events-<p>`, acknowledging each event): the first node of this
/// version starts at that consumer's acknowledged floor, looks up the runs
/// of what it had handed out past it, hands out only the event without
/// one, and deletes the consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_an_earlier_version_read_goes_on_from_its_acknowledged_floor() {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    use futures_util::StreamExt;

    let backend = Backend::nats();
    let (journal, mut feeds) = backend.start().await;
    let mut seqs = Vec::new();
    for i in 0..4 {
        let Appended::Accepted { seq } = journal.append(event(&format!("before-{i}"), "Lobby")).await.unwrap() else {
            panic!("a new event is accepted");
        };
        let queued = next(&mut feeds.events, "event", "nats").await;
        assert_eq!(queued.seq, seq);
        // The first three run and are written; the fourth never runs.
        if i < 3 {
            journal.processed(outcome(seq, queued.event.received_at, Vec::new()));
        }
        seqs.push(seq as u64);
    }
    let records = backend.records();
    eventually("nats", "the third event's run written", || {
        let runs = tokio::task::block_in_place(|| records.event("before-2")).ok()?;
        (runs.first()?.0.state == "done").then_some(())
    })
    .await;
    journal.close().await;
    drop(feeds);

    // As the earlier version left it: no floor kept, and its consumer
    // acknowledged up to the first, handed out up to the third.
    let js = async_nats::jetstream::new(async_nats::connect(backend.nats_url()).await.unwrap());
    js.get_stream("VESTIBULE_META")
        .await
        .unwrap()
        .purge()
        .filter("VESTIBULE.meta.floor.>")
        .await
        .unwrap();
    let events = js.get_stream("VESTIBULE_EVENTS").await.unwrap();
    let subject = events.get_raw_message(seqs[0]).await.unwrap().subject;
    let p = subject.split('.').nth(2).unwrap().to_string();
    let name = format!("events-{p}");
    let consumer = events
        .create_consumer(pull::Config {
            durable_name: Some(name.clone()),
            filter_subjects: vec![format!("VESTIBULE.events.{p}.*"), format!("VESTIBULE.events.{p}")],
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut handed = consumer.fetch().max_messages(3).messages().await.unwrap();
    let first = handed.next().await.unwrap().unwrap();
    first.double_ack().await.unwrap();
    for _ in 0..2 {
        handed.next().await.unwrap().unwrap();
    }
    let info = events.consumer_info(&name).await.unwrap();
    assert_eq!(
        (info.ack_floor.stream_sequence, info.delivered.stream_sequence),
        (seqs[0], seqs[2])
    );

    let (journal, mut feeds) = backend.start().await;
    let queued = next(&mut feeds.events, "the event the earlier version never ran", "nats").await;
    assert_eq!(
        (queued.seq as u64, queued.event.id.as_str()),
        (seqs[3], "before-3"),
        "the second and third have runs: not handed out again"
    );
    // The consumer's floor was kept before it went (the first renewal,
    // which keeps floors that moved, comes only a quarter lease later).
    let kept = js
        .get_stream("VESTIBULE_META")
        .await
        .unwrap()
        .get_last_raw_message_by_subject(&format!("VESTIBULE.meta.floor.{p}"))
        .await
        .expect("a floor kept for the partition");
    let kept: serde_json::Value = serde_json::from_slice(&kept.payload).unwrap();
    assert_eq!(
        (kept["floor"].as_u64(), kept["clean"].as_bool()),
        (Some(seqs[0]), Some(false)),
        "{kept}"
    );
    let again = tokio::time::timeout(Duration::from_secs(2), feeds.events.recv()).await;
    assert!(
        again.is_err(),
        "nothing else is handed out: {:?}",
        again.map(|q| q.map(|q| q.seq))
    );
    assert!(
        events.consumer_info(&name).await.is_err(),
        "the earlier version's consumer is deleted"
    );
    journal.close().await;
}
