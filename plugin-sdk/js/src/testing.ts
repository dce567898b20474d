// Testing a plugin under node, without WebAssembly: a `FakeHost` gives the
// plugin its config and records what it logs and sends, through the very
// code the component runs (config checks, errors and all).
//
//   const host = new FakeHost({ config: { doors: ["Lobby"] } });
//   const run = host.filter(plugin, testEvent({ kind: kind.ACCESS_GRANTED, door: "Lobby" }));
//   assert.deepEqual(run.result, keep());

import { Event, fromRecord, toRecord } from "./event.ts";
import type { Door } from "./event.ts";
import { check, run as runPlugin } from "./component.ts";
import { install } from "./host.ts";
import type { Plugin, Verdict } from "./index.ts";
import type { CommandRecord, ErrorRecord, Level } from "./wit.ts";

export interface Logged {
  level: Level;
  message: string;
  fields: Record<string, string>;
}

export interface Sent {
  sink: string;
  body: string;
  headers: Record<string, string>;
  /** How long after the event it is due (ms; 0 for now). */
  afterMs: number;
}

/** What the plugin did with one event: its result, or the error the host
 * would be told, and what it logged and sent. */
export interface Run<R> {
  result?: R;
  error?: ErrorRecord;
  logs: Logged[];
  commands: Sent[];
}

export interface FakeHostOptions {
  /** Its `[plugins.config]`, as the host hands it over (a table). */
  config?: Record<string, unknown>;
  /** The sinks it may send to; any when not given. */
  sinks?: string[];
}

export class FakeHost {
  constructor(private readonly options: FakeHostOptions = {}) {}

  filter<C>(plugin: Plugin<C>, event: Event): Run<Verdict> {
    return this.run(plugin, event) as Run<Verdict>;
  }

  enrich<C>(plugin: Plugin<C>, event: Event): Run<Event> {
    const run = this.run(plugin, event);
    return { ...run, result: run.result === undefined ? undefined : fromRecord(run.result as never) };
  }

  act<C>(plugin: Plugin<C>, event: Event): Run<void> {
    return this.run(plugin, event) as Run<void>;
  }

  /** What the host is told when it asks whether the config fits:
   * `undefined`, or the message. */
  checkConfig<C>(plugin: Plugin<C>): string | undefined {
    this.install([], []);
    return check(plugin as Plugin);
  }

  private run<C>(plugin: Plugin<C>, event: Event): Run<unknown> {
    const logs: Logged[] = [];
    const commands: Sent[] = [];
    this.install(logs, commands);
    const outcome = runPlugin(plugin as Plugin, toRecord(event, false));
    return "err" in outcome ? { error: outcome.err, logs, commands } : { result: outcome.ok, logs, commands };
  }

  private install(logs: Logged[], commands: Sent[]): void {
    const text = JSON.stringify(this.options.config ?? {});
    const allowed = this.options.sinks;
    const sent = (command: CommandRecord, afterMs: number) => {
      if (allowed && !allowed.includes(command.sink)) throw { tag: "unknown-sink", val: command.sink };
      commands.push({
        sink: command.sink,
        body: command.body,
        headers: Object.fromEntries(command.headers),
        afterMs,
      });
    };
    install(
      {
        config: () => text,
        log: (level, message, fields) => logs.push({ level, message, fields: Object.fromEntries(fields) }),
      },
      {
        send: (command) => sent(command, 0),
        sendLater: (command, delayMs) => sent(command, Number(delayMs)),
      },
      false,
    );
  }
}

export interface TestEventFields extends Partial<Omit<Event, "door">> {
  /** A door by name, or the whole door. */
  door?: string | Door;
}

/** An event for tests: "access.granted" at 2026-01-01 from source "test",
 * with whatever `fields` say. */
export function testEvent(fields: TestEventFields = {}): Event {
  const at = Date.UTC(2026, 0, 1);
  const { door, ...rest } = fields;
  return new Event({
    id: "evt-1",
    source: "test",
    vendor: "test",
    vendorEventType: "test",
    kind: "access.granted",
    occurredAt: at,
    receivedAt: at,
    attributes: [],
    raw: "{}",
    ...rest,
    door: typeof door === "string" ? { name: door } : door,
  });
}
