"""Docs derived from code are current, and every public code is documented."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from netprobe.report import FAULT_CODES, WARNING_CODES

ROOT = Path(__file__).resolve().parent.parent


def _gen_docs() -> object:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fault_table_is_current() -> None:
    gen = _gen_docs()
    current = (ROOT / "docs" / "faults-table.md").read_text()
    assert current == gen.fault_table(), "run: .venv/bin/python scripts/gen_docs.py"  # type: ignore[attr-defined]


def test_cli_options_table_is_current() -> None:
    gen = _gen_docs()
    current = (ROOT / "docs" / "cli-options-table.md").read_text()
    assert current == gen.cli_options_table(), "run: .venv/bin/python scripts/gen_docs.py"  # type: ignore[attr-defined]


def test_json_schema_is_current() -> None:
    gen = _gen_docs()
    current = (ROOT / "docs" / "schema" / "report.schema.json").read_text()
    assert current == gen.schema(), "run: .venv/bin/python scripts/gen_docs.py"  # type: ignore[attr-defined]


def test_every_code_is_in_the_docs() -> None:
    table = (ROOT / "docs" / "faults-table.md").read_text()
    for code in [*FAULT_CODES, *WARNING_CODES]:
        assert f"`{code}`" in table


def test_readme_has_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "scripts/demo" in readme
    assert "scripts/test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci
