"""Write a store with an *old* version of some event types: the code as it
was when those events were stored.

Run as ``sys.executable evolution_child.py JSON`` with JSON
``{"path": ..., "events": [[type, schema_version, aggregate_id, payload], ...]}``.
Each (type, schema_version) gets the payload class of that version from
:data:`SHAPES` (a type is registered once per process, so one run writes one
version of each type). Prints the stored positions as one JSON line.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from swarmlog import EventStore, create_event, register_event_type

AGGREGATE_TYPE = "evo-thing"


class ThingV1(msgspec.Struct, frozen=True, kw_only=True):
    """Version 1: just a name."""

    name: str


class ThingV2(msgspec.Struct, frozen=True, kw_only=True):
    """Version 2: name became title; tags were added."""

    title: str
    tags: tuple[str, ...] = ()


class ThingV5(msgspec.Struct, frozen=True, kw_only=True):
    """A version from the future."""

    title: str
    colour: str


SHAPES: dict[int, type[msgspec.Struct]] = {1: ThingV1, 2: ThingV2, 5: ThingV5}


def main(config: dict[str, Any]) -> None:
    classes: dict[str, type[msgspec.Struct]] = {}
    events = []
    for event_type, version, aggregate_id, payload in config["events"]:
        cls = classes.get(event_type)
        if cls is None:
            # a fresh class per type: one class may carry one type string only
            cls = msgspec.defstruct(
                f"{SHAPES[version].__name__}_{len(classes)}",
                [
                    (f.name, f.type, f.default)
                    if f.default is not msgspec.NODEFAULT
                    else (f.name, f.type)
                    for f in msgspec.structs.fields(SHAPES[version])
                ],
                frozen=True,
                kw_only=True,
            )
            register_event_type(
                cls,
                type=event_type,
                aggregate_type=AGGREGATE_TYPE,
                schema_version=version,
            )
            classes[event_type] = cls
        events.append(create_event(msgspec.convert(payload, cls), aggregate_id))
    with EventStore(config["path"]) as store:
        stored = store.append_many(events)
    sys.stdout.write(msgspec.json.encode([e.position for e in stored]).decode() + "\n")


if __name__ == "__main__":
    main(msgspec.json.decode(sys.argv[1]))
