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
    ("What was the root cause of the security incident?",
     ["aisha.khan", "lucas.moreau", "olivia.brooks"]),
    ("What is the salary band for the senior backend role?",
     ["liam.oconnor", "kenji.watanabe", "olivia.brooks"]),
    ("When is the v2.4 release?", ["maria.gonzalez", "lucas.moreau", "chloe.dubois"]),
    ("Is a reorganisation of the platform team planned?", ["elena.petrova", "david.okafor"]),
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
    for question, users in QUESTIONS:
        table = Table(title=question, show_lines=True, expand=True)
        table.add_column("asked by", style="bold", no_wrap=True)
        table.add_column("readable channels", justify="right")
        table.add_column("best match (channel: text)")
        for user in users:
            resp = rt.search.search(user, question, k=3)
            if resp.results:
                r = resp.results[0]
                where = f"~{r.channel_name}" if r.channel_type in ("O", "P") else r.channel_name
                body = r.text.split("\n", 1)[-1].replace("\n", " ")
                cell = f"[cyan]{where}[/] ({r.channel_type}): {body[:220]}"
            else:
                cell = "[dim]nothing this user may read[/]"
            table.add_row(f"@{user}", str(resp.scope_channels), cell)
        console.print(table)
    console.print(
        "\nTry it yourself:\n"
        "  .venv/bin/openops search --as aisha.khan \"root cause of the incident\"\n"
        "  .venv/bin/openops search --as olivia.brooks --json \"editorial calendar\"\n"
        "  .venv/bin/openops serve --insecure-local   # then POST http://127.0.0.1:8080/v1/search")
    rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
