"""The SDK through its fake host: the same code the component runs, so what
these assert is what the host is told."""

from vestibule_plugin import Door, Event, action, drop, duration_ms, enricher, filter, keep, kind, log, send
from vestibule_plugin.testing import FakeHost, Sent


def test_kinds_match_exactly_by_family_at_a_dot_or_all():
    event = Event(kind=kind.DOOR_OPENED)
    assert event.is_kind("door.opened") and event.is_kind("door.*") and event.is_kind("*")
    assert not event.is_kind("door") and not Event(kind=kind.DOORBELL_RING).is_kind("door.*")


def test_a_config_is_read_with_its_defaults_and_what_does_not_fit_is_refused():
    @filter(config={"doors": [], "limit": 3, "note": None}, required=["doors"])
    def plugin(event, config):
        return keep()

    assert FakeHost(config={"doors": ["A"], "note": 7}).check_config(plugin) is None
    assert FakeHost(config={}).check_config(plugin) == "missing field `doors`"
    assert FakeHost(config={"doors": [], "limt": 1}).check_config(plugin) == "unknown field `limt`, expected one of `doors`, `limit`, `note`"
    assert FakeHost(config={"doors": [], "limit": "3"}).check_config(plugin) == "`limit` should be a number, not a string"


def test_an_exception_becomes_the_plugins_failure_with_its_message():
    @filter()
    def plugin(event, config):
        raise LookupError("no such door")

    assert FakeHost().call(plugin, Event()).error == ("failed", "no such door")

    @filter()
    def wrong(event, config):
        return True

    assert FakeHost().call(wrong, Event()).error == ("failed", "a filter returns keep() or drop(reason)")
    assert FakeHost().call(filter()(lambda e, c: drop("closed")), Event()).result == drop("closed")


def test_a_plugins_own_check_refuses_a_config_with_its_words():
    plugin = filter(config={"doors": []}, check=lambda c: None if c["doors"] else "list a door")(lambda e, c: keep())
    assert FakeHost().check_config(plugin) == "list a door"
    assert FakeHost().call(plugin, Event()).error == ("config", "[plugins.config]: list a door")


def test_an_enrichers_changes_come_back():
    @enricher()
    def plugin(event, config):
        event.set_attribute("zone", "north")
        event.door.location = "Level 2"

    run = FakeHost().call(plugin, Event(door=Door(name="Lobby")))
    assert run.result.attribute("zone") == "north" and run.result.door == Door(name="Lobby", location="Level 2")


def test_an_actions_commands_logs_and_refusals_are_what_the_host_sees():
    @action(config={"sink": "lights"})
    def plugin(event, config):
        send(config["sink"], {"entity_id": "light.lobby"}, headers={"X-Reason": "badge"})
        send("lights-off", "off", after_ms=duration_ms("5m"))
        log.info("Lights on.", {"door": event.door.name, "n": 1})

    run = FakeHost(sinks=["lights", "lights-off"]).call(plugin, Event(door=Door(name="Lobby")))
    assert run.error is None
    assert run.commands == [
        Sent("lights", '{"entity_id":"light.lobby"}', {"X-Reason": "badge"}, 0),
        Sent("lights-off", "off", {}, 300_000),
    ]
    assert [(l.level, l.message, l.fields) for l in run.logs] == [("info", "Lights on.", {"door": "Lobby", "n": "1"})]
    refused = FakeHost(sinks=["lights"]).call(plugin, Event(door=Door(name="Lobby")))
    assert refused.error == ("failed", "sink `lights-off` is not one this plugin may use")
