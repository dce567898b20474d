// Write Vestibule plugins in TypeScript or JavaScript. A plugin is one
// handler of its role, exported as the module's default:
//
//   import { filter, keep, drop } from "@vestibule/plugin-sdk";
//
//   export default filter({ config: { door: "Front Door" } }, (event, config) =>
//     event.door?.name === config.door ? keep() : drop(`not ${config.door}`),
//   );
//
// `vestibule-plugin build` makes it a WebAssembly component the host loads;
// `vestibule-plugin test` runs its tests under node with a fake host.

import { Event } from "./event.ts";
import type { Options } from "./config.ts";
import { current, currentSinks, s64 } from "./host.ts";
import type { CommandRecord, Level, SendErrorRecord, VerdictRecord } from "./wit.ts";

export { Event } from "./event.ts";
export type { Actor, Credential, Device, Door } from "./event.ts";
export type { Options } from "./config.ts";
export { ConfigError } from "./config.ts";
export * as kind from "./kind.ts";
export { durationMs } from "./units.ts";

export type Verdict = VerdictRecord;

/** The event goes on. */
export function keep(): Verdict {
  return { tag: "keep" };
}

/** The event stops here; `reason` is logged. */
export function drop(reason: string): Verdict {
  return { tag: "drop", val: reason };
}

export type World = "filter" | "enricher" | "action";

/** A plugin of one role: what `export default` gives the build. */
export interface Plugin<C = unknown> {
  readonly world: World;
  readonly options: Options<C>;
  readonly handle: (event: Event, config: C) => unknown;
}

type Handler<C, R> = (event: Event, config: C) => R;

function role<C, R>(world: World, a: Options<C> | Handler<C, R>, b?: Handler<C, R>): Plugin<C> {
  const [options, handle] = typeof a === "function" ? [{}, a] : [a, b];
  if (typeof handle !== "function") throw new TypeError(`${world}(): give the handler as a function`);
  return { world, options, handle: handle as Plugin<C>["handle"] };
}

/** Decides whether an event goes on: return `keep()` or `drop(reason)`. */
export function filter<C = Record<string, unknown>>(handler: Handler<C, Verdict>): Plugin<C>;
export function filter<C>(options: Options<C>, handler: Handler<C, Verdict>): Plugin<C>;
export function filter<C>(a: Options<C> | Handler<C, Verdict>, b?: Handler<C, Verdict>): Plugin<C> {
  return role("filter", a, b);
}

/** Fills in the event or adds attributes: change it and return it (or
 * return nothing to pass it on as it is). */
export function enricher<C = Record<string, unknown>>(handler: Handler<C, Event | void>): Plugin<C>;
export function enricher<C>(options: Options<C>, handler: Handler<C, Event | void>): Plugin<C>;
export function enricher<C>(a: Options<C> | Handler<C, Event | void>, b?: Handler<C, Event | void>): Plugin<C> {
  return role("enricher", a, b);
}

/** Acts on an event by sending commands to the sinks it may use. */
export function action<C = Record<string, unknown>>(handler: Handler<C, void>): Plugin<C>;
export function action<C>(options: Options<C>, handler: Handler<C, void>): Plugin<C>;
export function action<C>(a: Options<C> | Handler<C, void>, b?: Handler<C, void>): Plugin<C> {
  return role("action", a, b);
}

export interface SendOptions {
  /** Headers (HTTP sinks) or user properties (MQTT sinks). The operator's
   * win, and some are the host's alone (`Authorization`, `Idempotency-Key`). */
  headers?: Record<string, string>;
  /** Deliver this long after the event was received (ms, at most a day).
   * A later delayed command from this plugin to the same sink about the
   * same door replaces it if it is not due yet. */
  afterMs?: number;
}

/** Ask the host to deliver `body` to the sink named `sink` once the
 * handler returns: a string as it is, anything else as JSON. */
export function send(sink: string, body: unknown, options: SendOptions = {}): void {
  const command: CommandRecord = {
    sink,
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: Object.entries(options.headers ?? {}).map(([k, v]) => [k, String(v)]),
  };
  try {
    if (options.afterMs === undefined) currentSinks().send(command);
    else currentSinks().sendLater(command, s64(options.afterMs));
  } catch (e) {
    throw new Error(sendError(e));
  }
}

function sendError(e: unknown): string {
  const error = (e as { payload?: unknown })?.payload ?? e;
  switch ((error as SendErrorRecord)?.tag) {
    case "unknown-sink":
      return `sink \`${(error as { val: string }).val}\` is not one this plugin may use`;
    case "too-many":
      return "too many commands for one event";
    default:
      return e instanceof Error ? e.message : String(e);
  }
}

type Fields = Record<string, string | number | boolean | null | undefined>;

function logAt(level: Level) {
  return (message: string, fields: Fields = {}) =>
    current().log(
      level,
      String(message),
      Object.entries(fields).map(([k, v]) => [k, String(v)]),
    );
}

/** Structured log lines, attributed to this plugin by the host. */
export const log = {
  trace: logAt("trace"),
  debug: logAt("debug"),
  info: logAt("info"),
  warn: logAt("warn"),
  error: logAt("error"),
};
