// Switches on the lights by a door when someone is let in, with a Home
// Assistant `light.turn_on` call sent to sink `lights` — and, with
// `off_after`, off again that long after the last unlock, through sink
// `off_sink` (`light.turn_off`). Each unlock restarts the timer.
//
//   [plugins.config]
//   sink = "lights"                              # default
//   kinds = ["access.granted", "door.unlocked"]  # default
//   off_sink = "lights-off"                      # default
//   off_after = "5m"                             # default: leave them on
//   [plugins.config.entities]                    # door name or id -> light entity
//   "Front Door" = "light.front_porch"

import { action, durationMs, log, send } from "@vestibule/plugin-sdk";

const defaults = {
  sink: "lights",
  kinds: ["access.granted", "door.unlocked"],
  off_sink: "lights-off",
  off_after: null as string | null,
  entities: {} as Record<string, string>,
};

export default action(
  {
    config: defaults,
    required: ["entities"],
    // A wrong duration is refused when the plugin is loaded, not met at an unlock.
    check: (c) => {
      if (c.off_after !== null) durationMs(c.off_after);
    },
  },
  (event, config) => {
    if (!config.kinds.some((k) => event.is(k))) return;
    const door = [event.door?.name, event.door?.id].find((d) => d !== undefined && Object.hasOwn(config.entities, d));
    if (door === undefined) {
      log.debug("No light configured for this door.", { event: event.id });
      return;
    }
    const entity = config.entities[door];
    const light = { entity_id: entity };
    send(config.sink, light);
    if (config.off_after !== null) send(config.off_sink, light, { afterMs: durationMs(config.off_after) });
    log.info("Lights on.", { entity, event: event.id });
  },
);
