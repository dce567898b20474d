import assert from "node:assert/strict";
import { test } from "node:test";
import { kind } from "@vestibule/plugin-sdk";
import { FakeHost, testEvent } from "@vestibule/plugin-sdk/testing";
import plugin from "../src/plugin.ts";

const config = { off_after: "5m", entities: { Lobby: "light.lobby" } };

test("an unlock switches on now and off later", () => {
  const host = new FakeHost({ config, sinks: ["lights", "lights-off"] });
  const run = host.act(plugin, testEvent({ kind: kind.ACCESS_GRANTED, door: "Lobby" }));
  assert.equal(run.error, undefined);
  assert.deepEqual(
    run.commands.map((c) => [c.sink, c.body, c.afterMs]),
    [
      ["lights", '{"entity_id":"light.lobby"}', 0],
      ["lights-off", '{"entity_id":"light.lobby"}', 300_000],
    ],
  );
  assert.equal(run.logs[0].message, "Lights on.");
});

test("other doors and kinds are left alone", () => {
  const host = new FakeHost({ config });
  for (const event of [
    testEvent({ kind: kind.ACCESS_GRANTED, door: "Garage" }),
    testEvent({ kind: kind.ACCESS_DENIED, door: "Lobby" }),
  ]) {
    const run = host.act(plugin, event);
    assert.equal(run.error, undefined);
    assert.deepEqual(run.commands, []);
  }
});

test("a config without entities, or with a wrong duration, says so", () => {
  assert.equal(new FakeHost({ config: { sink: "x" } }).checkConfig(plugin), "missing field `entities`");
  assert.equal(
    new FakeHost({ config: { entities: {}, off_after: "5 minutes" } }).checkConfig(plugin),
    'expected a duration such as "50ms", "5s", "2m", "1h" or "7d", got "5 minutes"',
  );
});
