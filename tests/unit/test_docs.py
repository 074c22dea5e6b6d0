"""The README documents every setting and the CLI commands that exist."""

from __future__ import annotations

from pathlib import Path

from rag.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table():
    for name in Settings.model_fields:
        assert f"`OPENOPS_{name.upper()}`" in README, f"OPENOPS_{name.upper()} is undocumented"


def test_every_cli_command_is_documented():
    from api.cli import app

    for cmd in app.registered_commands:
        assert f"openops {cmd.name or cmd.callback.__name__}" in README
