"""Rendering of :func:`swarmlog.diff_read_models`: text and JSON.

Rich is imported only through the console passed in. Runs on the
command's (main) thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

if TYPE_CHECKING:
    from rich.console import Console

    from swarmlog.diff import ModelDiff, ReadModelsDiff
    from swarmlog.simulation import RerunReport

__all__ = ["diff_json", "render_diff", "render_rerun", "short_value"]

_VALUE_WIDTH: Final = 60
"""Characters of a value shown in a change line before it is cut."""


def short_value(value: Any, width: int = _VALUE_WIDTH) -> str:
    """``value`` as compact JSON, cut to ``width`` characters."""
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def diff_json(result: ReadModelsDiff, path_a: str, path_b: str) -> dict[str, Any]:
    """The diff as plain JSON data, with ``equal`` and both paths."""
    data: dict[str, Any] = msgspec.to_builtins(result)
    return {"equal": result.equal, "a": path_a, "b": path_b, **data}


def _model_line(model: ModelDiff) -> str:
    if model.equal:
        return f"[bold]{model.name:<7}[/] [green]equal[/]"
    counts = (
        f"{len(model.added)} added · {len(model.removed)} removed · "
        f"{len(model.changed)} changed"
    )
    return f"[bold]{model.name:<7}[/] [yellow]{counts}[/]"


def render_diff(
    console: Console, result: ReadModelsDiff, path_a: str, path_b: str
) -> None:
    """Print each read model's additions, removals and field changes."""
    from rich.markup import escape

    console.print(
        f"A: [bold]{escape(path_a)}[/] at position {result.at_a:,}\n"
        f"B: [bold]{escape(path_b)}[/] at position {result.at_b:,}"
    )
    for model in result.models:
        console.print(_model_line(model))
        for item in model.added:
            console.print(
                f"  [green]+ {escape(item.id)}[/] {escape(short_value(item.value))}",
                overflow="ellipsis",
                no_wrap=True,
            )
        for item in model.removed:
            console.print(
                f"  [red]- {escape(item.id)}[/] {escape(short_value(item.value))}",
                overflow="ellipsis",
                no_wrap=True,
            )
        for change in model.changed:
            console.print(f"  [yellow]~ {escape(change.id)}[/]")
            for c in change.changes:
                console.print(
                    f"      {escape(c.field)}: {escape(short_value(c.before, 36))}"
                    f" → {escape(short_value(c.after, 36))}",
                    overflow="ellipsis",
                    no_wrap=True,
                )
    verdict = "[green]equal[/]" if result.equal else "[yellow]different[/]"
    console.print(f"read models: {verdict}")


def render_rerun(console: Console, rerun: RerunReport) -> None:
    """Print a replay's verdict, or a what-if's fork and its diff."""
    from rich.markup import escape

    recorded, run = rerun.recorded, rerun.run
    recordings = run.events_by_type.get("effect:recorded", 0)
    console.print()
    if rerun.kind == "replay":
        console.rule(f"[bold]replay[/] of {escape(recorded.path)}")
        verdict = (
            "[bold green]identical ✓[/]"
            if rerun.identical
            else "[bold red]DIFFERENT ✗[/]"
        )
        console.print(
            f"seed {recorded.seed} · {recorded.agents} agents · "
            f"{recorded.tasks} tasks · {run.events:,} events into "
            f"[bold]{escape(run.db_path)}[/]"
        )
        console.print(
            f"model calls made: [bold]{run.llm_calls}[/] (every answer "
            f"replayed from the recording)"
        )
        console.print(
            f"fingerprint [bold]{run.fingerprint}[/] vs recorded "
            f"[bold]{recorded.fingerprint}[/]: {verdict}"
        )
        return
    console.rule(f"[bold]what-if[/] on {escape(recorded.path)}")
    changed = ", ".join(f"{k} = {v}" for k, v in rerun.changed.items())
    console.print(
        f"forked at position [bold]{rerun.at_position:,}[/] (start of round "
        f"{rerun.at_round}) into [bold]{escape(run.db_path)}[/]; continued "
        f"with [bold]{escape(changed)}[/]"
    )
    console.print(
        f"{run.rounds} rounds · {run.tasks_completed} tasks completed · "
        f"{run.tasks_failed} failed · {run.retries} retries · "
        f"{run.llm_calls} new model calls (recorded in the fork; "
        f"{recordings} recordings in all)"
    )
    console.print(
        f"fingerprint [bold]{run.fingerprint}[/] vs recorded "
        f"[bold]{recorded.fingerprint}[/]"
    )
    if rerun.diff is not None:
        render_diff(console, rerun.diff, recorded.path, run.db_path)
