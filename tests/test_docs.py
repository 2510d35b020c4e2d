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


def test_report_fields_are_current_and_every_field_has_a_meaning() -> None:
    """docs/report-fields.md lists every field of every model a report holds (generated
    from the models: a field added without regenerating fails here), each with a meaning."""
    gen = _gen_docs()
    current = (ROOT / "docs" / "report-fields.md").read_text()
    assert current == gen.report_fields(), "run: .venv/bin/python scripts/gen_docs.py"  # type: ignore[attr-defined]
    from netprobe.report import Report
    from netprobe.steps import DatabaseResult, HttpResult, TcpStep

    for model in (Report, TcpStep, DatabaseResult, HttpResult):
        section = current.split(f"### {model.__name__}\n", 1)[1].split("\n### ", 1)[0]
        for name in [*model.model_fields, *model.model_computed_fields]:
            if model.model_fields.get(name) is not None and model.model_fields[name].exclude:
                continue
            assert f"| `{name}` |" in section, f"{model.__name__}.{name}"
    rows = [line for line in current.splitlines() if line.startswith("| `")]
    assert len(rows) > 150
    empty = [row for row in rows if row.endswith("|  |")]
    assert empty == [], (
        "fields without a meaning (give a description, or scripts/gen_docs.py MEANINGS)"
    )
    assert '--8<-- "docs/report-fields.md"' in (ROOT / "docs" / "report.md").read_text()


def test_the_api_page_renders_functions_not_modules() -> None:
    """``::: netprobe.diagnose`` renders the module netprobe/diagnose.py (its docstring), not
    the function: an identifier of the page must not name a module unless it means one."""
    page = (ROOT / "docs" / "api.md").read_text()
    identifiers = [line[4:].strip() for line in page.splitlines() if line.startswith("::: ")]
    assert "netprobe.diagnose.diagnose" in identifiers
    for path in identifiers:
        source = ROOT / path.replace(".", "/")
        is_module = source.with_suffix(".py").exists() or (source / "__init__.py").exists()
        assert not is_module, f"::: {path} renders the module, not the object"


def test_the_readme_examples_pass_mypy_strict(tmp_path: Path) -> None:
    """Every Python block of the README type-checks under mypy --strict (the first one read
    ``report.fault.layer`` under ``if not report.ok``, which mypy rejects: fault is
    optional)."""
    import re
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks
    files = []
    for i, block in enumerate(blocks):
        path = tmp_path / f"readme_{i}.py"
        path.write_text(block)
        files.append(str(path))
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(ROOT / ".mypy_cache"), *files],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
