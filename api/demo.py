"""`make demo`: ingest the sample workspace and search it as different people."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample-workspace"

QUESTIONS = [
    ("What was the root cause of the security incident?", ["aisha.khan", "lucas.moreau"]),
    ("When is the v2.4 GA release?", ["maria.gonzalez", "lucas.moreau"]),
    ("What is the salary band for the senior backend role?", ["liam.oconnor", "olivia.brooks"]),
]


def main() -> int:
    from ingest.pipeline import ingest_path
    from rag.runtime import Runtime

    console = Console()
    rt = Runtime()
    console.rule("[bold]OpenOps demo")
    console.print(f"state in {rt.settings.home.resolve()} (OPENOPS_HOME); sample: {SAMPLE}")
    t0 = time.perf_counter()
    with console.status("ingesting the sample workspace (loads the embedding model)..."):
        report = ingest_path(rt, SAMPLE)
    console.print(
        f"ingested in {time.perf_counter() - t0:.1f}s: {report.load.posts_new} new posts, "
        f"{report.load.files_ok} files; index holds {rt.index.count()} chunks "
        f"({report.index.embedded} embedded now, {report.index.unchanged} unchanged)")
    import asyncio

    for question, users in QUESTIONS:
        table = Table(title=f"[bold]{question}[/]", show_lines=True, expand=True)
        table.add_column("asked by", style="bold", no_wrap=True)
        table.add_column("answer (extractive mode) and its sources")
        for user in users:
            res = asyncio.run(rt.asker.ask(user, question))
            body = "\n".join(res.answer.splitlines()[2:]) or res.answer
            where = ", ".join(sorted({f"~{x['channel_name']}" if x["channel_type"] in "OP"
                                      else x["channel_name"] for x in res.sources}))
            table.add_row(f"@{user}\n{res.scope_channels} channels\nin scope",
                          f"{body}\n[dim]from {where or 'nothing'}[/]")
        console.print(table)
    console.print(
        "\n[bold]Same question, different answers[/]: each person gets only what Mattermost lets "
        "them read.\n\nTry it yourself:\n"
        "  .venv/bin/openops ask --as aisha.khan \"What was the root cause of the incident?\"\n"
        "  .venv/bin/openops summarize --as maria.gonzalez --channel eng-leads --days 3650\n"
        "  .venv/bin/openops serve --insecure-local\n"
        "\n[bold]Playground:[/] http://127.0.0.1:8080/  (after `.venv/bin/openops serve "
        "--insecure-local`)")
    rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
