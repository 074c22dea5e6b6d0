"""The ``openops`` command line. Heavy imports (torch, Chroma, FastAPI) happen inside commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="OpenOps: permission-aware search and answers over a Mattermost workspace.")
console = Console(stderr=True)
out = Console()


def _runtime():
    from rag.runtime import Runtime

    return Runtime()


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@app.command()
def ingest(path: Path = typer.Argument(..., help="Bulk export: .jsonl, .zip, or a directory "
                                            "holding import.jsonl")) -> None:
    """Load a Mattermost bulk export and index it (idempotent; resumes after a crash)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ingest.bulk import BulkLoader, ExportError
    from ingest.files import Limits
    from ingest.indexer import IndexUnavailable
    from ingest.pipeline import make_indexer

    rt = _runtime()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
                  transient=False) as bar:
        t_load = bar.add_task("reading export", total=None, info="")

        def on_load(r) -> None:
            if r.lines % 200 == 0:
                bar.update(t_load, completed=r.lines,
                           info=f"posts +{r.posts_new} ~{r.posts_changed} files {r.files_ok} "
                                f"skipped {r.skipped} errors {len(r.errors) + len(r.files_failed)}")

        try:
            load = BulkLoader(rt.db, on_line=on_load,
                              limits=Limits.from_settings(rt.settings)).load(path)
        except ExportError as exc:
            _fail(f"{exc}. Give a .jsonl file, a .zip made by `mmctl export create`, or a "
                  "directory with import.jsonl.")
            return
        bar.update(t_load, total=load.lines, completed=load.lines,
                   info=f"posts +{load.posts_new} ~{load.posts_changed} files {load.files_ok}")
        t_idx = bar.add_task("indexing channels", total=None, info="loading embedding model")
        indexer = make_indexer(rt)

        def on_index(r, total) -> None:
            bar.update(t_idx, total=total, completed=r.channels,
                       info=f"threads {r.threads} chunks {r.chunks} (embedded {r.embedded}) "
                            f"files {r.files}")

        try:
            report = indexer.run(progress=on_index)
        except IndexUnavailable as exc:
            _fail(f"{exc}.")
            return
        bar.update(t_idx, total=max(report.channels, 1), completed=max(report.channels, 1),
                   info=f"threads {report.threads} chunks {report.chunks} "
                        f"(embedded {report.embedded}) files {report.files}")
    for line in load.errors:
        console.print(f"[yellow]warning:[/] {line}")
    for line in load.files_failed:
        console.print(f"[yellow]skipped file:[/] {line}")
    skipped = ", ".join(f"{k} x{v}" for k, v in sorted(load.skipped_types.items())) or "none"
    out.print(
        f"[bold green]ingested[/] {load.lines} lines: posts new {load.posts_new}, changed "
        f"{load.posts_changed}, deleted {load.posts_deleted}; files indexed {load.files_ok}, "
        f"failed {len(load.files_failed)}; line types skipped: {skipped}; errors {len(load.errors)}\n"
        f"index: {report.channels} channels, {report.threads} threads, {report.chunks} chunks "
        f"({report.embedded} embedded, {report.unchanged} unchanged, {report.deleted} removed)"
    )


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for."),
    as_user: str = typer.Option(..., "--as", help="Search as this username (or user id)."),
    k: int = typer.Option(8, "--k", min=1, max=100, help="Number of results."),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON document."),
) -> None:
    """Search with exactly the permissions of one Mattermost user."""
    from rag.errors import OpenOpsError

    rt = _runtime()
    try:
        resp = rt.search.search(as_user, query, k)
    except OpenOpsError as exc:
        _fail(str(exc))
        return
    if as_json:
        sys.stdout.write(json.dumps(resp.to_dict(), indent=2) + "\n")
        return
    if not resp.results:
        out.print(f"no results for @{as_user} (readable channels: {resp.scope_channels})")
        return
    out.print(f"[dim]{len(resp.results)} results for @{as_user}, {resp.scope_channels} readable "
              f"channels, {resp.took_ms:.0f} ms[/]")
    for i, r in enumerate(resp.results, 1):
        where = f"~{r.channel_name}" if r.channel_type in ("O", "P") else r.channel_name
        extra = f" [{r.source}: {r.file_name}]" if r.file_name else ""
        out.print(f"\n[bold]{i}. {where}[/] ({r.team_name or r.channel_type}){extra} "
                  f"score {r.score:.3f}" + (f"\n   {r.permalink}" if r.permalink else ""))
        body = r.text.split("\n", 1)[-1]
        out.print("   " + body[:600].replace("\n", "\n   "), markup=False, highlight=False)


def _print_sources(sources: list[dict]) -> None:
    if not sources:
        return
    out.print("\n[bold]Sources[/]")
    for src in sources:
        where = f"~{src['channel_name']}" if src["channel_type"] in ("O", "P") else src["channel_name"]
        extra = f" [{src['file_name']}]" if src.get("file_name") else ""
        link = f"\n     {src['permalink']}" if src.get("permalink") else ""
        out.print(f"  [{src['n']}] {where}{extra} · {src['author']}{link}", markup=False,
                  highlight=False)


async def _stream(events) -> dict:
    from rag.errors import OpenOpsError

    done: dict = {}
    try:
        async for ev in events:
            if ev.type == "token":
                out.print(ev.data, end="", markup=False, highlight=False, soft_wrap=True)
            elif ev.type == "sources":
                out.print()
                _print_sources(ev.data)
            elif ev.type == "done":
                done = ev.data
            elif ev.type == "error":
                out.print()
                _fail(ev.data["error"])
    except OpenOpsError as exc:
        _fail(str(exc))
    return done


@app.command()
def ask(
    question: str = typer.Argument(..., help="Your question."),
    as_user: str = typer.Option(..., "--as", help="Ask as this username (or user id)."),
    conversation: str | None = typer.Option(None, "--conversation",
                                               help="Continue a conversation or a summary."),
) -> None:
    """Answer from what one user may read, streamed, with numbered sources."""
    import asyncio

    rt = _runtime()
    done = asyncio.run(_stream(rt.asker.events(as_user, question, conversation)))
    if done:
        console.print(f"[dim]{done['model']} · {done['scope_channels']} channels in scope · "
                      f"conversation {done['conversation_id']} · answer {done['answer_id']}[/]")


@app.command()
def summarize(
    as_user: str = typer.Option(..., "--as", help="Summarise for this username (or user id)."),
    thread: str | None = typer.Option(None, "--thread", help="A post id of the thread."),
    channel: str | None = typer.Option(None, "--channel", help="Channel name or id."),
    days: float | None = typer.Option(None, "--days", help="With --channel: the last N days."),
    file_id: str | None = typer.Option(None, "--meeting", help="A WebVTT transcript's file id."),
) -> None:
    """Summarise a thread, a channel over the last N days, or a meeting transcript."""
    import asyncio

    if sum(x is not None for x in (thread, channel, file_id)) != 1:
        _fail("give exactly one of --thread ID, --channel NAME (with --days N) or --meeting ID")
    kind = "thread" if thread else "channel" if channel else "meeting"
    rt = _runtime()
    events = rt.summaries.events(as_user, kind, thread_id=thread, channel_id=channel,
                                         days=days, file_id=file_id)
    done = asyncio.run(_stream(events))
    if done:
        console.print(f"[dim]{done['model']} · {done['posts']} parts · follow up with: "
                      f"openops ask --as {as_user} --conversation {done['conversation_id']} "
                      f"\"...\"[/]")


@app.command()
def serve(
    host: str = typer.Option("0.0.0.0", help="Interface to bind."),
    port: int = typer.Option(8080, help="Port to bind."),
    insecure_local: bool = typer.Option(
        False, "--insecure-local",
        help="Run without OPENOPS_API_KEY: no authentication, bound to 127.0.0.1 only."),
) -> None:
    """Start the HTTP API (FastAPI) and, when OPENOPS_MATTERMOST_URL and _TOKEN are set, the
    Mattermost bot in the same process."""
    import uvicorn

    from api.app import create_app

    rt = _runtime()
    if not rt.settings.api_key and not insecure_local:
        _fail("OPENOPS_API_KEY is not set. Set it (clients send `Authorization: Bearer <key>`), "
              "or pass --insecure-local to run unauthenticated on 127.0.0.1 only.", code=2)
    if insecure_local and not rt.settings.api_key:
        host = "127.0.0.1"
    application = create_app(rt, insecure_local=insecure_local and not rt.settings.api_key)
    console.print("loading the embedding model...")
    rt.embedder  # noqa: B018 - load before accepting requests, so the first query is fast
    _warm_in_background(rt)
    console.print(f"OpenOps API on http://{host}:{port} (docs at /docs)")
    uvicorn.run(application, host=host, port=port, log_level="info")


def _mattermost(rt):
    from ingest.mattermost.client import Mattermost, MattermostError

    s = rt.settings
    if not (s.mattermost_url and s.mattermost_token):
        _fail("set OPENOPS_MATTERMOST_URL (https://chat.example.com) and OPENOPS_MATTERMOST_TOKEN "
              "(the bot account's access token) first", code=2)
    try:
        return Mattermost(s.mattermost_url, s.mattermost_token, ca_file=s.mattermost_ca_file)
    except MattermostError as exc:
        _fail(str(exc), code=2)


@app.command()
def sync(
    team: str | None = typer.Option(None, help="Only this team (id)."),
    channel: str | None = typer.Option(None, help="Only this channel (id)."),
    changed_only: bool = typer.Option(
        False, "--changed-only", help="Only posts changed since the last sync of each channel."),
) -> None:
    """Re-index from the live Mattermost server through its REST API (resumable; search keeps
    answering meanwhile)."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ingest.mattermost.client import MattermostError
    from ingest.mattermost.mirror import Mirror
    from ingest.mattermost.sync import Syncer
    from ingest.pipeline import make_indexer

    rt = _runtime()
    mm = _mattermost(rt)
    scope: dict | str = {"channel_id": channel} if channel else {"team_id": team} if team else "all"
    mirror = Mirror(rt.db)

    async def run(bar, task):
        def on_progress(p, _cursor) -> None:
            bar.update(task, total=p.channels_total or None, completed=p.channels_done,
                       info=f"{p.phase}: users {p.users} posts {p.posts} files {p.files} "
                            f"errors {len(p.errors)}")

        try:
            me = await mm.login()
            mirror.bot_user_id, mirror.bot_username = me["id"], me.get("username")
            syncer = Syncer(mm, mirror, on_progress=on_progress)
            return await syncer.run(scope, incremental=changed_only)
        finally:
            await mm.close()

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("syncing channels", total=None, info="connecting")
        try:
            progress = asyncio.run(run(bar, task))
        except MattermostError as exc:
            _fail(str(exc))
            return
        t_idx = bar.add_task("indexing channels", total=None, info="")

        def on_index(r, total) -> None:
            bar.update(t_idx, total=total, completed=r.channels,
                       info=f"chunks {r.chunks} embedded {r.embedded}")

        report = make_indexer(rt).run(progress=on_index)
    out.print(f"synced {progress.channels_done} channels, {progress.posts} posts, "
              f"{progress.files} files from {rt.settings.mattermost_url}; indexed "
              f"{report.channels} channels ({report.chunks} chunks, {report.embedded} embedded)")
    for e in progress.errors[:20]:
        console.print(f"[yellow]skipped:[/] {e}")


mattermost_app = typer.Typer(help="Mattermost integration.", no_args_is_help=True)
app.add_typer(mattermost_app, name="mattermost")


@mattermost_app.command("setup")
def mattermost_setup(
    url: str = typer.Option(..., help="URL Mattermost calls for /openops, e.g. "
                                      "http://openops:8080/mattermost/command"),
    team: list[str] = typer.Option(None, help="Team names (default: every team of the bot)."),
) -> None:
    """Create the /openops slash command in each team through the API (needs a token allowed
    to manage slash commands) and print the command token to set as
    OPENOPS_MATTERMOST_COMMAND_TOKEN."""
    import asyncio

    from ingest.mattermost.client import MattermostError

    rt = _runtime()
    mm = _mattermost(rt)

    async def run() -> list[tuple[str, str, bool]]:
        made = []
        try:
            me = await mm.login()
            teams = await mm.get(f"/api/v4/users/{me['id']}/teams")
            for t in teams:
                if team and t["name"] not in team:
                    continue
                existing = [c for c in await mm.commands(t["id"]) if c.get("trigger") == "openops"]
                if existing:
                    made.append((t["name"], existing[0].get("token", ""), False))
                    continue
                cmd = await mm.create_command({
                    "team_id": t["id"], "trigger": "openops", "method": "P", "url": url,
                    "display_name": "OpenOps", "description": "Answers and summaries with sources",
                    "auto_complete": True, "auto_complete_desc": "ask, summarize, react, help",
                    "auto_complete_hint": "[ask QUESTION | summarize [--days N] | react | help]",
                    "username": me.get("username", "openops")})
                made.append((t["name"], cmd.get("token", ""), True))
        finally:
            await mm.close()
        return made

    try:
        made = asyncio.run(run())
    except MattermostError as exc:
        _fail(f"{exc}. Create the command by hand instead: System Console > Integrations > "
              "Slash Commands (the README shows the fields).")
        return
    if not made:
        _fail("the bot is in no team: add it to a team first", code=2)
    tokens = {tok for _, tok, _ in made}
    for name, _tok, new in made:
        out.print(f"team {name}: /openops {'created' if new else 'already exists'}")
    if len(tokens) == 1:
        out.print(f"OPENOPS_MATTERMOST_COMMAND_TOKEN={tokens.pop()}")
    else:
        out.print("each team's command has its own token; OpenOps accepts one: keep one team's, "
                  "or create the command once per team with the same token by hand")
        for name, tok, _ in made:
            out.print(f"  {name}: {tok}")


def _warm_in_background(rt) -> None:
    """While the server starts answering: build the ONNX query encoder, load the language
    model's client, fill the scope cache (so that the first question of a user with a broad
    scope does not pay for loading its channels' embeddings), then freeze what start-up left
    out of garbage collection."""
    import threading

    def warm() -> None:
        from sqlalchemy import select

        from rag.db import Channel

        console.print(f"questions are embedded with {rt.embedder.warm_query_encoder()}")
        try:
            if rt.generator is not None:
                rt.generator.prepare()
        except Exception as exc:  # noqa: BLE001 - the first question will say what is wrong
            console.print(f"[yellow]language model client not prepared:[/] {exc}")
        try:
            with rt.db.session() as s:
                chans = {c: (n, v) for c, n, v in s.execute(
                    select(Channel.id, Channel.chunk_count, Channel.index_version))}
            rows = rt.index.warm(chans)
            console.print(f"scope cache warm: {rows} chunk embeddings")
        except Exception as exc:  # noqa: BLE001 - warming is an optimisation only
            console.print(f"[yellow]scope cache warm-up skipped:[/] {exc}")
        # The model, Chroma, LangChain and the caches leave ~670k objects that live as long as
        # the process; every full collection walked them all: 330 ms (measured here) during
        # which every answer in flight stopped, twice in a three-minute benchmark. Frozen, they
        # are never walked again; later collections see only what came after (2 ms, measured
        # after 200 questions: hence the language model's client is prepared above, or its
        # lazily built types would be left outside, 68 ms).
        import gc

        gc.collect()
        gc.freeze()
        console.print(f"froze {gc.get_freeze_count()} start-up objects out of garbage collection")

    threading.Thread(target=warm, name="openops-warm", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    app(args=argv)


if __name__ == "__main__":  # pragma: no cover
    main()
