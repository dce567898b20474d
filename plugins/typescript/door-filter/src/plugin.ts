// Keeps only the events for the doors (and kinds) you name; drops the rest.
//
//   [plugins.config]
//   doors = ["Front Door", "7f0d…"]      # door names or vendor ids; empty = any door
//   kinds = ["access.*", "door.forced"]  # normalized kinds or families; empty = any kind

import { drop, filter, keep } from "@vestibule/plugin-sdk";

export default filter({ config: { doors: [] as string[], kinds: [] as string[] } }, (event, config) => {
  const { name, id } = event.door ?? {};
  const listed = config.doors.length === 0 || [name, id].some((d) => d !== undefined && config.doors.includes(d));
  if (!listed) return drop(`door ${name ?? id ?? "(none)"} is not listed`);
  if (config.kinds.length > 0 && !config.kinds.some((k) => event.is(k))) {
    return drop(`kind ${event.kind} is not listed`);
  }
  return keep();
});
