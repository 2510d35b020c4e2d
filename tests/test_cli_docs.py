"""docs/cli.md agrees with the code: every command and every option is documented."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from netprobe.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def _page(name: str) -> str:
    """A docs page as mkdocs renders it: its snippet includes (``--8<-- "file"``) expanded."""
    out = []
    for line in (ROOT / "docs" / name).read_text().splitlines():
        if line.startswith('--8<-- "'):
            line = (ROOT / line.split('"')[1]).read_text()
        out.append(line)
    return "\n".join(out)


DOC = _page("cli.md")


def _commands() -> list[tuple[str, click.Command]]:
    assert isinstance(cli, click.Group)
    return sorted(cli.commands.items())


def test_the_commands_exist() -> None:
    assert {name for name, _ in _commands()} == {
        "diagnose",
        "demo",
        "pool",
        "churn",
        "wait",
        "serve",
    }


@pytest.mark.parametrize(("name", "command"), _commands())
def test_every_command_and_option_is_documented(name: str, command: click.Command) -> None:
    assert f"## `netprobe {name}`" in DOC
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts:
                if opt != "-h":
                    assert f"`{opt}" in DOC, f"{name} {opt} is missing from docs/cli.md"


def test_the_shared_options_are_derived_from_the_options_fields() -> None:
    """Flag help and the default shown come from the Options field (no second copy to drift:
    before, the defaults were repeated by hand in the help strings)."""
    from netprobe._cliutil import SHARED_OPTIONS
    from netprobe.options import Options

    for name in ("diagnose", "pool", "wait"):
        params = {p.name: p for p in cli.commands[name].params if isinstance(p, click.Option)}
        for option in SHARED_OPTIONS:
            field = Options.model_fields[option.field]
            assert field.description is not None, option.field
            param = params[option.param]
            assert param.help is not None and option.flag in param.opts
            if name == "wait" and option.field == "timeout":
                continue  # wait's --timeout is its overall deadline (health/_cli.py)
            assert field.description.rstrip(".") in param.help, option.flag
            if isinstance(field.default, float) and not option.turns_off:
                assert f"[default: {field.default:g}]" in param.help, option.flag


def test_the_shared_options_reach_diagnose_as_its_keywords() -> None:
    from netprobe._cliutil import options_from_cli
    from netprobe.options import make_options

    args = ["x:1", "--timeout", "4", "--no-icmp", "--insecure", "--nameserver", "10.0.0.2"]
    ctx = cli.commands["diagnose"].make_context("diagnose", [*args, "--nameserver", "::1"])
    kw = dict(ctx.params)
    options = options_from_cli(kw)
    assert options == {
        "timeout": 4.0,
        "icmp": False,
        "verify": False,
        "nameservers": ("10.0.0.2", "::1"),
    }
    assert set(kw) == {"target", "as_json", "verbose"}  # every shared one was taken
    assert make_options(**options).nameservers == ("10.0.0.2", "::1")
