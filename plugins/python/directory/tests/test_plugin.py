from vestibule_plugin import Actor, Event, kind
from vestibule_plugin.testing import FakeHost

import plugin

CSV = '''
id,name,department,floor
u-7,Ada Lovelace,"Engineering, R&D",7
u-8,,Facilities,1
'''


def test_fills_in_who_came_in():
    run = FakeHost(config={"csv": CSV}).call(plugin.plugin, Event(kind=kind.ACCESS_GRANTED, actor=Actor(id="u-7")))
    assert run.error is None
    assert run.result.actor.name == "Ada Lovelace"
    assert run.result.attribute("department") == "Engineering, R&D"
    assert run.result.attribute("floor") == "7"


def test_a_stranger_passes_unchanged_with_a_debug_line():
    event = Event(actor=Actor(id="u-9"))
    run = FakeHost(config={"csv": CSV}).call(plugin.plugin, event)
    assert run.result == Event(actor=Actor(id="u-9"))
    assert [(l.level, l.message) for l in run.logs] == [("debug", "Not in the directory.")]


def test_the_vendors_name_wins_and_tables_work_too():
    config = {"people": [{"id": "u-7", "name": "A. Lovelace", "floor": "7"}]}
    run = FakeHost(config=config).call(plugin.plugin, Event(actor=Actor(id="u-7", name="Ada")))
    assert run.result.actor.name == "Ada"
    assert run.result.attribute("floor") == "7"


def test_a_broken_directory_is_refused_before_it_serves():
    assert FakeHost(config={"csv": "id,name\nu-1"}).check_config(plugin.plugin) == "csv line 2: 1 fields, the header has 2"
    assert FakeHost(config={"people": [{"name": "x"}]}).check_config(plugin.plugin) == "entry 1 has no `id`"
    assert FakeHost(config={"cvs": ""}).check_config(plugin.plugin) == "unknown field `cvs`, expected one of `key`, `csv`, `people`"
