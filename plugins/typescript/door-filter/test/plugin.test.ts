import assert from "node:assert/strict";
import { test } from "node:test";
import { drop, keep, kind } from "@vestibule/plugin-sdk";
import { FakeHost, testEvent } from "@vestibule/plugin-sdk/testing";
import plugin from "../src/plugin.ts";

const host = new FakeHost({ config: { doors: ["Front Door", "Lobby"], kinds: ["access.*", "door.*"] } });

test("a listed door of a listed kind is kept", () => {
  const run = host.filter(plugin, testEvent({ kind: kind.ACCESS_GRANTED, door: "Lobby" }));
  assert.deepEqual(run.result, keep());
});

test("another door is dropped, saying which", () => {
  const run = host.filter(plugin, testEvent({ door: "Garage" }));
  assert.deepEqual(run.result, drop("door Garage is not listed"));
});

test("a door is matched by its vendor id too", () => {
  const run = new FakeHost({ config: { doors: ["7f0d"] } }).filter(plugin, testEvent({ door: { id: "7f0d" } }));
  assert.deepEqual(run.result, keep());
});

test("a kind that is not listed is dropped; families stop at the dot", () => {
  const run = host.filter(plugin, testEvent({ kind: kind.DOORBELL_RING, door: "Lobby" }));
  assert.deepEqual(run.result, drop("kind doorbell.ring is not listed"));
});

test("no config means every door and kind", () => {
  const run = new FakeHost().filter(plugin, testEvent({ kind: kind.DEVICE_OFFLINE }));
  assert.deepEqual(run.result, keep());
});

test("a typo in the config is refused before the plugin serves", () => {
  assert.equal(
    new FakeHost({ config: { dors: ["Lobby"] } }).checkConfig(plugin),
    "unknown field `dors`, expected one of `doors`, `kinds`",
  );
  assert.equal(new FakeHost({ config: { doors: "Lobby" } }).checkConfig(plugin), "`doors` should be a list, not a string");
});
