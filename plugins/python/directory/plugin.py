"""Fills in who someone is — name, department, floor and any other column —
from a directory given in its config, as CSV or as TOML tables, keyed by the
vendor's user id or by the credential presented.

    [plugins.config]
    key = "user"        # the actor's vendor id (default), or "credential"
    csv = \"\"\"
    id,name,department,floor
    daa10301-7744-4623-a90e-372718af1d41,Ada Lovelace,Engineering,7
    \"\"\"
    # or, instead of csv: [[plugins.config.people]] tables with id, name, …

The `name` column fills the actor's name when the vendor sent none; every
other column becomes an attribute. Someone not in the directory passes
unchanged, with a debug log line.
"""

import csv

from vestibule_plugin import Actor, enricher, log


def people(config):
    found = [dict(p) for p in config["people"]]
    if config["csv"] is not None:
        rows = [r for r in csv.reader(line.strip() for line in config["csv"].splitlines() if line.strip())]
        header = [h.strip() for h in rows[0]] if rows else []
        for n, row in enumerate(rows[1:], start=2):
            if len(row) != len(header):
                raise ValueError(f"csv line {n}: {len(row)} fields, the header has {len(header)}")
            found.append({k: v.strip() for k, v in zip(header, row) if v.strip()})
    for n, person in enumerate(found, start=1):
        if "id" not in person:
            raise ValueError(f"entry {n} has no `id`")
    return found


def check(config):
    if config["key"] not in ("user", "credential"):
        return f"`key` is \"user\" or \"credential\", not {config['key']!r}"
    people(config)  # the CSV must parse: refused at load, not on the first badge


@enricher(config={"key": "user", "csv": None, "people": []}, check=check)
def plugin(event, config):
    if config["key"] == "user":
        key = event.actor.id if event.actor else None
    else:
        key = event.credential.value if event.credential else None
    person = next((p for p in people(config) if key is not None and p["id"] == key), None)
    if person is None:
        log.debug("Not in the directory.", {"event": event.id})
        return event
    for column, value in sorted(person.items()):
        if column == "name":
            event.actor = event.actor or Actor()
            event.actor.name = event.actor.name or value
        elif column != "id":
            event.set_attribute(column, value)
    return event
