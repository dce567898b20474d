import type { EventRecord, Option } from "./wit.ts";
import { matches } from "./kind.ts";

export interface Door {
  /** The vendor's id for the door. */
  id?: string;
  /** The name people use ("Main entrance"). */
  name?: string;
  /** Floor, building or site, as the vendor names it. */
  location?: string;
}

/** The person or system that caused the event. `name`, `email` and `phone`
 * are personal data: a plugin cleared only to secrecy level 2 or lower sees
 * them removed. */
export interface Actor {
  id?: string;
  name?: string;
  email?: string;
  phone?: string;
  /** The vendor's kind of actor ("user", "visitor", "admin", ...). */
  kind?: string;
}

/** What was presented at the reader. */
export interface Credential {
  /** "nfc", "pin", "face", "mobile", "qr", ... */
  method: string;
  /** The card number or PIN: removed at secrecy level 1 and up. */
  value?: string;
}

/** The reader, hub, panel or intercom that reported the event. */
export interface Device {
  id?: string;
  name?: string;
  model?: string;
}

/** One access-control event, the same shape for every vendor. */
export class Event {
  /** The vendor's event id, or one derived from the body. */
  id: string;
  /** The configured source it came in on. */
  source: string;
  /** "unifi-access", "verkada", ... */
  vendor: string;
  /** The vendor's own name for the event. */
  vendorEventType: string;
  /** The normalized kind ("access.granted", "door.forced", ...; see `kind`). */
  kind: string;
  /** When it happened, by the vendor's clock (ms since the epoch, UTC). */
  occurredAt: number;
  /** When Vestibule received it (ms since the epoch, UTC). */
  receivedAt: number;
  door?: Door;
  actor?: Actor;
  credential?: Credential;
  device?: Device;
  /** Free-form attributes, in order; enrichers add to them. */
  attributes: { key: string; value: string }[];
  /** The vendor's JSON body, as this plugin's secrecy level lets it see it. */
  raw: string;

  constructor(fields: Omit<Event, "is" | "attribute" | "setAttribute" | "json">) {
    this.id = fields.id;
    this.source = fields.source;
    this.vendor = fields.vendor;
    this.vendorEventType = fields.vendorEventType;
    this.kind = fields.kind;
    this.occurredAt = fields.occurredAt;
    this.receivedAt = fields.receivedAt;
    this.door = fields.door;
    this.actor = fields.actor;
    this.credential = fields.credential;
    this.device = fields.device;
    this.attributes = fields.attributes;
    this.raw = fields.raw;
  }

  /** Whether the kind is `pattern`: equal, "*", or a family ("door.*"
   * matches "door.opened", not "doorbell.ring"). */
  is(pattern: string): boolean {
    return matches(pattern, this.kind);
  }

  /** The first attribute named `key`. */
  attribute(key: string): string | undefined {
    return this.attributes.find((a) => a.key === key)?.value;
  }

  /** Set attribute `key`, replacing the first of that name or adding it. */
  setAttribute(key: string, value: string): void {
    const found = this.attributes.find((a) => a.key === key);
    if (found) found.value = value;
    else this.attributes.push({ key, value });
  }

  /** The vendor's body parsed; `undefined` where it is not JSON. */
  json(): unknown {
    try {
      return JSON.parse(this.raw);
    } catch {
      return undefined;
    }
  }
}

// An option is null in one engine and undefined in another: plugins see
// undefined, as TypeScript's optional fields expect.
function some<T>(value: Option<T>): T | undefined {
  return value ?? undefined;
}

function fields<T extends object>(record: Option<T>): T | undefined {
  if (record == null) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) out[key] = some(value);
  return out as T;
}

/** The event as the host sent it. */
export function fromRecord(r: EventRecord): Event {
  return new Event({
    id: r.id,
    source: r.source,
    vendor: r.vendor,
    vendorEventType: r.vendorEventType,
    kind: r.kind,
    occurredAt: Number(r.occurredAt),
    receivedAt: Number(r.receivedAt),
    door: fields(r.door) as Door | undefined,
    actor: fields(r.actor) as Actor | undefined,
    credential: fields(r.credential) as Credential | undefined,
    device: fields(r.device) as Device | undefined,
    attributes: r.attributes.map((a) => ({ key: a.key, value: a.value })),
    raw: r.raw,
  });
}

/** The event as the host takes it back (an enricher's result). */
export function toRecord(e: Event, bigints: boolean): EventRecord {
  const option = <T>(value: T | undefined): T | null => (value === undefined ? null : value);
  const record = <T extends object>(value: T | undefined, keys: string[]) => {
    if (value === undefined || value === null) return null;
    const out: Record<string, unknown> = {};
    for (const key of keys) out[key] = option((value as Record<string, unknown>)[key]);
    return out;
  };
  const time = (ms: number) => (bigints ? BigInt(Math.trunc(ms)) : Math.trunc(ms));
  return {
    id: String(e.id),
    source: String(e.source),
    vendor: String(e.vendor),
    vendorEventType: String(e.vendorEventType),
    kind: String(e.kind),
    occurredAt: time(e.occurredAt),
    receivedAt: time(e.receivedAt),
    door: record(e.door, ["id", "name", "location"]) as EventRecord["door"],
    actor: record(e.actor, ["id", "name", "email", "phone", "kind"]) as EventRecord["actor"],
    credential: e.credential
      ? { method: String(e.credential.method), value: option(e.credential.value) }
      : null,
    device: record(e.device, ["id", "name", "model"]) as EventRecord["device"],
    attributes: e.attributes.map((a) => ({ key: String(a.key), value: String(a.value) })),
    raw: String(e.raw),
  };
}
