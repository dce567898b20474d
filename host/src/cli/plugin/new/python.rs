//! A Python plugin: a virtual environment with the SDK (and its engine,
//! componentize-py) and pytest, `vestibule-plugin build` and
//! `vestibule-plugin test`.

use std::path::Path;

use super::{Scaffold, relative};
use crate::config::World;

/// The Python SDK beside the Rust one this `vestibule` was built with.
pub const BUILT_WITH_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-sdk/python");

/// The pytest the SDK's own tests run with.
const PYTEST: &str = "pytest==9.2.0";

pub fn scaffold(name: &str, world: World, dir: &Path, sdk: &Path) -> Scaffold {
    let component = format!("dist/{name}.wasm");
    let install = format!(
        "python3 -m venv .venv && .venv/bin/pip install -e {} {PYTEST}",
        relative(dir, sdk)
    );
    let (source, test) = match world {
        World::Filter => (FILTER, FILTER_TEST),
        World::Enricher => (ENRICHER, ENRICHER_TEST),
        World::Action => (ACTION, ACTION_TEST),
    };
    Scaffold {
        files: vec![
            (
                "pyproject.toml",
                format!(
                    "[project]\nname = \"{name}\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\n\n[tool.vestibule]\nworld = \"{world}\"\n"
                ),
            ),
            ("plugin.py", source.replace("{name}", name)),
            ("tests/test_plugin.py", test.to_string()),
            (".gitignore", ".venv/\ndist/\n__pycache__/\n".to_string()),
            ("README.md", readme(name, world, &component, &install)),
        ],
        steps: vec![
            (install, "install: the SDK, its engine, pytest"),
            (".venv/bin/vestibule-plugin build".into(), "the component"),
            (".venv/bin/vestibule-plugin test".into(), "its tests, natively"),
        ],
        component,
    }
}

fn readme(name: &str, world: World, component: &str, install: &str) -> String {
    format!(
        "# {name}\n\nA Vestibule {world} plugin in Python.\n\n```sh\n\
         {install}   # install\n\
         .venv/bin/vestibule-plugin build   # {component}\n\
         .venv/bin/vestibule-plugin test    # its tests, natively\n```\n\n\
         Then try the component as the host runs it:\n\n```sh\n\
         vestibule plugin run {component} --event events/granted.json --config example.toml\n```\n\n\
         In `vestibule.toml` (the path from the config file's folder):\n\n```toml\n[[plugins]]\nname = \"{name}\"\nworld = \"{world}\"\npath = \"{component}\"\n\
         [plugins.config]\n# as in example.toml\n```\n"
    )
}

const FILTER: &str = r#""""{name}: keeps the events of the kinds its config lists, drops the rest."""

from vestibule_plugin import drop, filter, keep


# Its [plugins.config]: every key with its default; "kinds" must be given.
@filter(config={"kinds": []}, required=["kinds"])
def plugin(event, config):
    if any(event.is_kind(kind) for kind in config["kinds"]):
        return keep()
    return drop(f"{event.kind} is not a kind this plugin keeps")
"#;

const FILTER_TEST: &str = r#"from vestibule_plugin import Event, drop, keep, kind
from vestibule_plugin.testing import FakeHost

import plugin


def test_keeps_the_kinds_it_lists():
    host = FakeHost(config={"kinds": ["access.*"]})
    assert host.call(plugin.plugin, Event(kind=kind.ACCESS_GRANTED)).result == keep()
    ring = host.call(plugin.plugin, Event(kind=kind.DOORBELL_RING))
    assert ring.result == drop("doorbell.ring is not a kind this plugin keeps")
"#;

const ENRICHER: &str = r#""""{name}: adds the door's "zone", from its config, to every event."""

from vestibule_plugin import enricher


# Its [plugins.config]: door name -> zone.
@enricher(config={"zones": {}}, required=["zones"])
def plugin(event, config):
    zone = config["zones"].get(event.door.name) if event.door else None
    if zone is not None:
        event.set_attribute("zone", zone)
    return event
"#;

const ENRICHER_TEST: &str = r#"from vestibule_plugin import Door, Event
from vestibule_plugin.testing import FakeHost

import plugin


def test_adds_the_zone_of_the_door():
    run = FakeHost(config={"zones": {"Lobby": "public"}}).call(plugin.plugin, Event(door=Door(name="Lobby")))
    assert run.result.attribute("zone") == "public"
"#;

const ACTION: &str = r#""""{name}: tells a chat sink who was let in where."""

from vestibule_plugin import action, kind, log, send


# Its [plugins.config]: the sink to post to, as named in the host's [[sinks]].
@action(config={"sink": ""}, required=["sink"])
def plugin(event, config):
    if not event.is_kind(kind.ACCESS_GRANTED):
        return
    door = event.door.name if event.door and event.door.name else "a door"
    who = event.actor.name if event.actor and event.actor.name else "someone"
    send(config["sink"], {"text": f"{who} came in at {door}"})
    log.info("Announced.", {"door": door})
"#;

const ACTION_TEST: &str = r#"from vestibule_plugin import Actor, Door, Event, kind
from vestibule_plugin.testing import FakeHost

import plugin


def test_announces_who_came_in():
    event = Event(kind=kind.ACCESS_GRANTED, door=Door(name="Lobby"), actor=Actor(name="Ada"))
    run = FakeHost(config={"sink": "chat"}).call(plugin.plugin, event)
    assert run.error is None
    assert run.commands[0].sink == "chat"
    assert run.commands[0].body == '{"text":"Ada came in at Lobby"}'
"#;
