// The values that cross the component boundary, as the WIT in `../wit`
// describes them (records with camelCase fields, options as null or
// undefined depending on the engine, s64 as a number or a bigint).
// Plugins never see these: `event.ts` turns them into an `Event`.

export type Option<T> = T | null | undefined;

export interface DoorRecord {
  id: Option<string>;
  name: Option<string>;
  location: Option<string>;
}

export interface ActorRecord {
  id: Option<string>;
  name: Option<string>;
  email: Option<string>;
  phone: Option<string>;
  kind: Option<string>;
}

export interface CredentialRecord {
  method: string;
  value: Option<string>;
}

export interface DeviceRecord {
  id: Option<string>;
  name: Option<string>;
  model: Option<string>;
}

export interface AttributeRecord {
  key: string;
  value: string;
}

export interface EventRecord {
  id: string;
  source: string;
  vendor: string;
  vendorEventType: string;
  kind: string;
  occurredAt: number | bigint;
  receivedAt: number | bigint;
  door: Option<DoorRecord>;
  actor: Option<ActorRecord>;
  credential: Option<CredentialRecord>;
  device: Option<DeviceRecord>;
  attributes: AttributeRecord[];
  raw: string;
}

/** `variant error` of `types`. */
export type ErrorRecord = { tag: "config"; val: string } | { tag: "failed"; val: string };

/** `variant verdict` of the filter world. */
export type VerdictRecord = { tag: "keep" } | { tag: "drop"; val: string };

/** `enum level` of `host`. */
export type Level = "trace" | "debug" | "info" | "warn" | "error";

/** `record command` of `sinks`. */
export interface CommandRecord {
  sink: string;
  body: string;
  headers: [string, string][];
}

/** `variant send-error` of `sinks`. */
export type SendErrorRecord = { tag: "unknown-sink"; val: string } | { tag: "too-many" };

/** What the host gives every plugin (`interface host`). */
export interface Host {
  log(level: Level, message: string, fields: [string, string][]): void;
  config(): string;
}

/** What the host gives an action (`interface sinks`); each throws a
 * `SendErrorRecord` where WIT returns its error. */
export interface Sinks {
  send(command: CommandRecord): void;
  sendLater(command: CommandRecord, delayMs: number | bigint): void;
}
