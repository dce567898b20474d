// Reading a plugin's `[plugins.config]` (the host hands it over as JSON)
// against what the plugin declared: its keys with their defaults, those it
// requires, and a check of its own. Messages read like the Rust SDK's, so
// an operator sees the same kind of answer whatever a plugin is written in.

import { current } from "./host.ts";

export interface Options<C> {
  /** Every key the config may have, with its default. A key not here is
   * refused (a typo must not be silently ignored), and so is a value of
   * another type than its default's (a default of `null` takes any). */
  config?: C;
  /** Keys the operator must give. */
  required?: (keyof C & string)[];
  /** What else the config must be; return (or throw) what is wrong. */
  check?: (config: C) => string | void;
}

/** A config the plugin cannot work with: the host refuses the plugin. */
export class ConfigError extends Error {}

function kindOf(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a table";
  return `a ${typeof value}`;
}

// The last config read, for the plugin whose options it was read with.
let cached: { text: string; options: object; config: unknown } | undefined;

/** The config, read and checked; throws `ConfigError`. */
export function readConfig<C>(options: Options<C>): C {
  const text = current().config();
  if (cached?.text === text && cached.options === options) return cached.config as C;
  let given: unknown;
  try {
    given = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`[plugins.config]: not JSON: ${e}`);
  }
  if (kindOf(given) !== "a table") throw new ConfigError("[plugins.config]: expected a table");
  const table = given as Record<string, unknown>;
  let config: Record<string, unknown> = table;
  if (options.config !== undefined) {
    const defaults = options.config as Record<string, unknown>;
    const known = Object.keys(defaults);
    for (const [key, value] of Object.entries(table)) {
      if (!known.includes(key)) {
        const expected = known.length ? `expected one of ${known.map((k) => `\`${k}\``).join(", ")}` : "expected none";
        throw new ConfigError(`[plugins.config]: unknown field \`${key}\`, ${expected}`);
      }
      const want = defaults[key];
      if (want !== null && want !== undefined && kindOf(want) !== kindOf(value)) {
        throw new ConfigError(`[plugins.config]: \`${key}\` should be ${kindOf(want)}, not ${kindOf(value)}`);
      }
    }
    config = { ...structuredCopy(defaults), ...table };
  }
  for (const key of options.required ?? []) {
    if (!(key in table)) throw new ConfigError(`[plugins.config]: missing field \`${key}\``);
  }
  let problem: string | void;
  try {
    problem = options.check?.(config as C);
  } catch (e) {
    problem = e instanceof Error ? e.message : String(e);
  }
  if (problem) throw new ConfigError(`[plugins.config]: ${problem}`);
  cached = { text, options, config };
  return config as C;
}

// Defaults are copied so that a handler that changes its config cannot
// change the next call's.
function structuredCopy(value: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(value));
}
