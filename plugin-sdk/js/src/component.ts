// What the component exports, made from the plugin's default export: the
// role's function and `check-config`, each turning the plugin's outcome
// into WIT. Any exception becomes the WIT `error`, with its message: an
// exception that escaped would be a bare trap, its message lost.

import { fromRecord, toRecord } from "./event.ts";
import { ConfigError, readConfig } from "./config.ts";
import { install, usesBigints } from "./host.ts";
import type { Event } from "./event.ts";
import type { Plugin, World } from "./index.ts";
import type { ErrorRecord, EventRecord, Host, Sinks } from "./wit.ts";

export { install };

function message(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return typeof e === "string" ? e : JSON.stringify(e) ?? String(e);
}

function asError(e: unknown): ErrorRecord {
  return e instanceof ConfigError ? { tag: "config", val: message(e) } : { tag: "failed", val: message(e) };
}

/** Call the handler on `record`, its result or the WIT error. */
export function run(plugin: Plugin, record: EventRecord): { ok: unknown } | { err: ErrorRecord } {
  try {
    const config = readConfig(plugin.options);
    const event = fromRecord(record);
    const result = plugin.handle(event, config);
    switch (plugin.world) {
      case "filter":
        if (!isVerdict(result)) throw new Error("a filter returns keep() or drop(reason)");
        return { ok: result };
      case "enricher":
        return { ok: toRecord((result ?? event) as Event, usesBigints()) };
      case "action":
        return { ok: undefined };
    }
  } catch (e) {
    return { err: asError(e) };
  }
}

function isVerdict(v: unknown): boolean {
  const tag = (v as { tag?: unknown })?.tag;
  return tag === "keep" || (tag === "drop" && typeof (v as { val?: unknown }).val === "string");
}

/** `check-config`: the message when the config does not fit. */
export function check(plugin: Plugin): string | undefined {
  try {
    readConfig(plugin.options);
    return undefined;
  } catch (e) {
    return message(e).replace(/^\[plugins\.config\]: /, "");
  }
}

/** The component's exports for `world`; WIT errors are thrown, as the
 * engines expect of a function returning `result`. */
export function exportsFor(world: World, plugin: Plugin, host: Host, sinks: Sinks | undefined, bigints: boolean) {
  if (plugin?.world === undefined) {
    throw new Error(`the entry's default export is not a plugin: export default ${world}(…)`);
  }
  if (plugin.world !== world) {
    throw new Error(`the plugin is a ${plugin.world}, but package.json says \"world\": \"${world}\"`);
  }
  install(host, sinks, bigints);
  const call = (record: EventRecord) => {
    const outcome = run(plugin, record);
    if ("err" in outcome) throw outcome.err;
    return outcome.ok;
  };
  const checkConfig = () => {
    const problem = check(plugin);
    if (problem !== undefined) throw problem;
  };
  return { call, checkConfig };
}
