"""``suite list``: the registered tasks, families, optimizers and regularizers."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from suite.cli.console import command, out


class What(StrEnum):
    tasks = "tasks"
    families = "families"
    optimizers = "optimizers"
    regularizers = "regularizers"


def catalogue(what: What) -> list[dict[str, Any]]:
    """Summaries of every registered entry of one kind."""
    from suite.families import FAMILIES
    from suite.optimizers import OPTIMIZERS
    from suite.regularizers import REGULARIZERS
    from tasks import TASKS

    registry = {
        What.tasks: TASKS,
        What.families: FAMILIES,
        What.optimizers: OPTIMIZERS,
        What.regularizers: REGULARIZERS,
    }[what]
    if what == What.tasks:  # which families fit is asked of the family registry, not of the task
        from suite.families import families_for, not_offered

        return [{**t.summary(), "families": list(families_for(t)), "not_offered": not_offered(t)}
                for _, t in TASKS.items()]
    return [entry.summary() for _, entry in registry.items()]


@command
def list_cmd(
    what: Annotated[What | None, typer.Argument(help="what to list; all kinds when omitted")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List registered tasks, families, optimizers or regularizers."""
    from suite.plugins import LOADED, UNAVAILABLE

    kinds = [what] if what else list(What)
    data = {k.value: catalogue(k) for k in kinds}
    if as_json:
        print(json.dumps(data[what.value] if what else
                         {**data, "plugins": [{k: v for k, v in p.items() if k != "key"} for p in LOADED],
                          "unavailable": UNAVAILABLE}, indent=2))
        return
    for kind, entries in data.items():
        table = Table(title=kind, title_justify="left")
        table.add_column("name", style="bold")
        table.add_column("details")
        for e in entries:
            if kind == "tasks":
                detail = (f"{e['kind']}; {e['metric']} ({e['direction']}, target {e['target']}); "
                          f"families: {', '.join(e['families'])}")
            else:
                detail = e.get("description", "")
                if e.get("params"):
                    detail += "  [" + ", ".join(f"{k}={v}" for k, v in e["params"].items()) + "]"
            table.add_row(e["name"], detail)
        out.print(table)
    for p in LOADED:
        regs = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["registered"].items()) or "nothing"
        out.print(f"plugin {p['name']} ({p['path']}): {regs}", markup=False, highlight=False, soft_wrap=True)
    for u in UNAVAILABLE:
        out.print(f"unavailable: {u['name']} ({u['group']}): {u['reason']}", markup=False, highlight=False,
                  soft_wrap=True)
