// The SDK through its fake host: the same code the component runs, so what
// these assert is what the host is told.

import assert from "node:assert/strict";
import { test } from "node:test";
import { action, drop, durationMs, enricher, filter, keep, kind, log, send } from "../src/index.ts";
import { FakeHost, testEvent } from "../src/testing.ts";

test("kinds match exactly, by family at a dot, or all", () => {
  const event = testEvent({ kind: kind.DOOR_OPENED });
  assert.ok(event.is("door.opened") && event.is("door.*") && event.is("*"));
  assert.ok(!event.is("door") && !testEvent({ kind: kind.DOORBELL_RING }).is("door.*"));
});

test("a config is read with its defaults, and what does not fit is refused as the host would say", () => {
  const plugin = filter({ config: { doors: [] as string[], limit: 3, note: null }, required: ["doors"] }, () => keep());
  assert.equal(new FakeHost({ config: { doors: ["A"], note: 7 } }).checkConfig(plugin), undefined);
  assert.equal(new FakeHost({ config: {} }).checkConfig(plugin), "missing field `doors`");
  assert.equal(
    new FakeHost({ config: { doors: [], limt: 1 } }).checkConfig(plugin),
    "unknown field `limt`, expected one of `doors`, `limit`, `note`",
  );
  assert.equal(new FakeHost({ config: { doors: [], limit: "3" } }).checkConfig(plugin), "`limit` should be a number, not a string");
  const seen: unknown[] = [];
  const spy = filter({ config: { doors: [] as string[], limit: 3 } }, (_, config) => {
    seen.push(config);
    return keep();
  });
  new FakeHost({ config: { doors: ["A"] } }).filter(spy, testEvent());
  assert.deepEqual(seen, [{ doors: ["A"], limit: 3 }]);
});

test("a plugin's own check refuses a config, with its words", () => {
  const plugin = filter({ config: { doors: [] as string[] }, check: (c) => (c.doors.length ? undefined : "list a door") }, () => keep());
  assert.equal(new FakeHost().checkConfig(plugin), "list a door");
  const run = new FakeHost().filter(plugin, testEvent());
  assert.deepEqual(run.error, { tag: "config", val: "[plugins.config]: list a door" });
});

test("an exception becomes the plugin's failure, with its message", () => {
  const plugin = filter(() => {
    throw new Error("no such door");
  });
  assert.deepEqual(new FakeHost().filter(plugin, testEvent()).error, { tag: "failed", val: "no such door" });
  const typo = filter((event) => (event as unknown as { nope: { x: number } }).nope.x as never);
  assert.match(new FakeHost().filter(typo, testEvent()).error!.val, /undefined/);
});

test("a filter that returns something else than a verdict fails, saying so", () => {
  const plugin = filter(() => true as never);
  assert.deepEqual(new FakeHost().filter(plugin, testEvent()).error, {
    tag: "failed",
    val: "a filter returns keep() or drop(reason)",
  });
  assert.deepEqual(new FakeHost().filter(filter(() => drop("closed")), testEvent()).result, drop("closed"));
});

test("an enricher's changes come back, and returning nothing passes the event on", () => {
  const plugin = enricher((event) => {
    event.setAttribute("zone", "north");
    event.door = { ...event.door, location: "Level 2" };
  });
  const run = new FakeHost().enrich(plugin, testEvent({ door: "Lobby", attributes: [{ key: "zone", value: "old" }] }));
  assert.equal(run.error, undefined);
  assert.deepEqual(run.result!.attributes, [{ key: "zone", value: "north" }]);
  assert.deepEqual(run.result!.door, { id: undefined, name: "Lobby", location: "Level 2" });
  assert.equal(run.result!.attribute("zone"), "north");
});

test("an action's commands, logs and refusals are what the host sees", () => {
  const plugin = action({ config: { sink: "lights" } }, (event, config) => {
    send(config.sink, { entity_id: "light.lobby" }, { headers: { "X-Reason": "badge" } });
    send("lights-off", "off", { afterMs: 300_000 });
    log.info("Lights on.", { door: event.door?.name, n: 1 });
  });
  const run = new FakeHost({ sinks: ["lights", "lights-off"] }).act(plugin, testEvent({ door: "Lobby" }));
  assert.equal(run.error, undefined);
  assert.deepEqual(run.commands, [
    { sink: "lights", body: '{"entity_id":"light.lobby"}', headers: { "X-Reason": "badge" }, afterMs: 0 },
    { sink: "lights-off", body: "off", headers: {}, afterMs: 300_000 },
  ]);
  assert.deepEqual(run.logs, [{ level: "info", message: "Lights on.", fields: { door: "Lobby", n: "1" } }]);
  const refused = new FakeHost({ sinks: ["lights"] }).act(plugin, testEvent());
  assert.deepEqual(refused.error, { tag: "failed", val: "sink `lights-off` is not one this plugin may use" });
});

test("the vendor's body is there parsed, and not-JSON is undefined", () => {
  assert.deepEqual(testEvent({ raw: '{"a":1}' }).json(), { a: 1 });
  assert.equal(testEvent({ raw: "<xml/>" }).json(), undefined);
});

test("durations read as the host reads them", () => {
  assert.equal(durationMs("5m"), 300_000);
  assert.equal(durationMs("50ms"), 50);
  assert.throws(() => durationMs("5 minutes"), /expected a duration such as "50ms"/);
  assert.throws(() => durationMs("4000d"), /is too long: at most "3650d"/);
});
