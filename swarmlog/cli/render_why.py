"""Rendering of ``swarmlog why``: the causes as a numbered chain, the
consequences as a tree.

Rich is imported only when the tree is built. Runs on the command's (main)
thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from swarmlog.cli.format import event_line

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from swarmlog.schema.envelope import Event

__all__ = ["consequence_tree", "render_why"]


def _parent(event: Event[Any]) -> UUID | None:
    try:
        return None if event.causation_id is None else UUID(event.causation_id)
    except ValueError:
        return None


def consequence_tree(
    root: Event[Any], consequences: Sequence[Event[Any]]
) -> dict[UUID, list[Event[Any]]]:
    """Event id -> the events it caused directly, in commit order."""
    children: dict[UUID, list[Event[Any]]] = {root.id: []}
    for event in consequences:
        children.setdefault(event.id, [])
        parent = _parent(event)
        if parent is not None and parent in children:
            children[parent].append(event)
    return children


def render_why(
    console: Console,
    chain: Sequence[Event[Any]],
    consequences: Sequence[Event[Any]],
) -> None:
    """Print the causes (root first, the event last) and the consequences."""
    from rich.markup import escape
    from rich.tree import Tree

    event = chain[-1]
    console.print(f"[bold]Why[/] #{event.position} {event.type} {event.aggregate_id}")
    root = chain[0]
    if root.causation_id is not None:
        console.print(
            f"  caused by {escape(root.causation_id)}, which is not in this store"
        )
    for depth, cause in enumerate(chain):
        marker = "[bold]→[/]" if cause is event else " "
        console.print(f"{marker} {'  ' * depth}{escape(event_line(cause))}")
    children = consequence_tree(event, consequences)
    tree = Tree(
        f"[bold]Consequences[/] ({len(consequences)}) of #{event.position}",
        guide_style="dim",
    )
    pending = [(tree, event)]
    while pending:
        node, parent = pending.pop()
        for child in children.get(parent.id, []):
            pending.append((node.add(escape(event_line(child))), child))
    console.print(tree)
