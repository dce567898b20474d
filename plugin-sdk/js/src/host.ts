// The host the SDK talks to: the component's imports, installed by the
// entry `vestibule-plugin build` generates, or a fake installed by
// `testing.ts`. One place, so that nothing else knows which it is.

import type { Host, Sinks } from "./wit.ts";

let host: Host | undefined;
let sinks: Sinks | undefined;
/** Whether the engine gives and takes s64 as a bigint. */
let bigints = false;

export function install(h: Host, s: Sinks | undefined, s64AsBigint: boolean): void {
  host = h;
  sinks = s;
  bigints = s64AsBigint;
}

export function current(): Host {
  if (!host) throw new Error("no host: run the plugin in Vestibule, or under testing's FakeHost");
  return host;
}

export function currentSinks(): Sinks {
  if (!sinks) throw new Error("only an action plugin may send commands");
  return sinks;
}

export function s64(value: number): number | bigint {
  return bigints ? BigInt(Math.trunc(value)) : Math.trunc(value);
}

export function usesBigints(): boolean {
  return bigints;
}
