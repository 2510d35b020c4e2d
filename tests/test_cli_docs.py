"""docs/cli.md agrees with the code: every command and every option is documented."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from netprobe.cli import cli

DOC = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()


def _commands() -> list[tuple[str, click.Command]]:
    assert isinstance(cli, click.Group)
    return sorted(cli.commands.items())


def test_the_four_commands_exist() -> None:
    assert {name for name, _ in _commands()} == {"diagnose", "demo", "pool", "wait"}


@pytest.mark.parametrize(("name", "command"), _commands())
def test_every_command_and_option_is_documented(name: str, command: click.Command) -> None:
    assert f"## `netprobe {name}`" in DOC
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts:
                if opt != "-h":
                    assert f"`{opt}" in DOC, f"{name} {opt} is missing from docs/cli.md"
