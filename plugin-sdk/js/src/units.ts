// Durations as people write them in config files ("50ms", "5s", "2m",
// "1h", "7d"), read as the host and the Rust SDK read them, with the same
// messages.

/** The longest duration accepted: ten years ("3650d"). */
const MAX_MS = 3650 * 86_400_000;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `text` in milliseconds; throws what is wrong with it. */
export function durationMs(text: string): number {
  const match = /^\s*(\d+)\s*([a-z]*)\s*$/.exec(String(text));
  const unit = match ? UNITS[match[2]] : undefined;
  if (!match || unit === undefined) {
    throw new Error(`expected a duration such as "50ms", "5s", "2m", "1h" or "7d", got ${JSON.stringify(text)}`);
  }
  const ms = Number(match[1]) * unit;
  if (!Number.isSafeInteger(ms) || ms > MAX_MS) {
    throw new Error(`${JSON.stringify(text)} is too long: at most "3650d" (ten years)`);
  }
  return ms;
}
