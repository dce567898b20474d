//! A TypeScript plugin: `npm install`, `npm run build` (the SDK's
//! `vestibule-plugin build`, with QuickJS) and `npm test` (node's test
//! runner, with the SDK's fake host).

use std::path::Path;

use super::{Scaffold, relative};
use crate::config::World;

/// The TypeScript SDK beside the Rust one this `vestibule` was built with.
pub const BUILT_WITH_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-sdk/js");

pub fn scaffold(name: &str, world: World, dir: &Path, sdk: &Path) -> Scaffold {
    let component = format!("dist/{name}.wasm");
    let (source, test) = match world {
        World::Filter => (FILTER, FILTER_TEST),
        World::Enricher => (ENRICHER, ENRICHER_TEST),
        World::Action => (ACTION, ACTION_TEST),
    };
    Scaffold {
        files: vec![
            ("package.json", package_json(name, world, &relative(dir, sdk))),
            // The SDK is installed as a copy with its own dependencies (the
            // engine, the bundler), not as a link to a folder whose
            // packages were never installed.
            (".npmrc", "install-links=true\n".to_string()),
            ("src/plugin.ts", source.replace("{name}", name)),
            ("test/plugin.test.ts", test.to_string()),
            (".gitignore", "node_modules/\ndist/\n".to_string()),
            ("README.md", readme(name, world, &component)),
        ],
        steps: vec![
            ("npm install".into(), "install: the SDK, the engine, the bundler"),
            ("npm run build".into(), "the component"),
            ("npm test".into(), "its tests, under node"),
        ],
        component,
    }
}

fn package_json(name: &str, world: World, sdk: &str) -> String {
    let package = serde_json::json!({
        "name": name,
        "version": "0.1.0",
        "private": true,
        "type": "module",
        "vestibule": { "world": world.to_string() },
        "scripts": { "build": "vestibule-plugin build", "test": "vestibule-plugin test" },
        "dependencies": { "@vestibule/plugin-sdk": format!("file:{sdk}") },
    });
    serde_json::to_string_pretty(&package).unwrap_or_default() + "\n"
}

fn readme(name: &str, world: World, component: &str) -> String {
    format!(
        "# {name}\n\nA Vestibule {world} plugin in TypeScript.\n\n```sh\n\
         npm install     # install: the SDK, the engine, the bundler\n\
         npm run build   # {component}\n\
         npm test        # its tests, under node\n```\n\n\
         Then try the component as the host runs it:\n\n```sh\n\
         vestibule plugin run {component} --event events/granted.json --config example.toml\n```\n\n\
         In `vestibule.toml` (the path from the config file's folder):\n\n```toml\n[[plugins]]\nname = \"{name}\"\nworld = \"{world}\"\npath = \"{component}\"\n\
         [plugins.config]\n# as in example.toml\n```\n"
    )
}

const FILTER: &str = r#"// {name}: keeps the events of the kinds its config lists, drops the rest.

import { drop, filter, keep } from "@vestibule/plugin-sdk";

export default filter(
  // Its [plugins.config]: every key with its default; "kinds" must be given.
  { config: { kinds: [] as string[] }, required: ["kinds"] },
  (event, config) =>
    config.kinds.some((kind) => event.is(kind)) ? keep() : drop(`${event.kind} is not a kind this plugin keeps`),
);
"#;

const FILTER_TEST: &str = r#"import assert from "node:assert/strict";
import { test } from "node:test";
import { drop, keep, kind } from "@vestibule/plugin-sdk";
import { FakeHost, testEvent } from "@vestibule/plugin-sdk/testing";
import plugin from "../src/plugin.ts";

test("keeps the kinds it lists", () => {
  const host = new FakeHost({ config: { kinds: ["access.*"] } });
  assert.deepEqual(host.filter(plugin, testEvent({ kind: kind.ACCESS_GRANTED })).result, keep());
  assert.deepEqual(
    host.filter(plugin, testEvent({ kind: kind.DOORBELL_RING })).result,
    drop("doorbell.ring is not a kind this plugin keeps"),
  );
});
"#;

const ENRICHER: &str = r#"// {name}: adds the door's "zone", from its config, to every event.

import { enricher } from "@vestibule/plugin-sdk";

export default enricher(
  // Its [plugins.config]: door name -> zone.
  { config: { zones: {} as Record<string, string> }, required: ["zones"] },
  (event, config) => {
    const zone = config.zones[event.door?.name ?? ""];
    if (zone !== undefined) event.setAttribute("zone", zone);
    return event;
  },
);
"#;

const ENRICHER_TEST: &str = r#"import assert from "node:assert/strict";
import { test } from "node:test";
import { FakeHost, testEvent } from "@vestibule/plugin-sdk/testing";
import plugin from "../src/plugin.ts";

test("adds the zone of the door", () => {
  const host = new FakeHost({ config: { zones: { Lobby: "public" } } });
  const run = host.enrich(plugin, testEvent({ door: "Lobby" }));
  assert.equal(run.result?.attribute("zone"), "public");
});
"#;

const ACTION: &str = r#"// {name}: tells a chat sink who was let in where.

import { action, kind, log, send } from "@vestibule/plugin-sdk";

export default action(
  // Its [plugins.config]: the sink to post to, as named in the host's [[sinks]].
  { config: { sink: "" }, required: ["sink"] },
  (event, config) => {
    if (!event.is(kind.ACCESS_GRANTED)) return;
    const door = event.door?.name ?? "a door";
    const who = event.actor?.name ?? "someone";
    send(config.sink, { text: `${who} came in at ${door}` });
    log.info("Announced.", { door });
  },
);
"#;

const ACTION_TEST: &str = r#"import assert from "node:assert/strict";
import { test } from "node:test";
import { kind } from "@vestibule/plugin-sdk";
import { FakeHost, testEvent } from "@vestibule/plugin-sdk/testing";
import plugin from "../src/plugin.ts";

test("announces who came in", () => {
  const host = new FakeHost({ config: { sink: "chat" } });
  const run = host.act(plugin, testEvent({ kind: kind.ACCESS_GRANTED, door: "Lobby", actor: { name: "Ada" } }));
  assert.equal(run.error, undefined);
  assert.equal(run.commands[0].sink, "chat");
  assert.equal(run.commands[0].body, '{"text":"Ada came in at Lobby"}');
});
"#;
