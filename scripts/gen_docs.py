"""Regenerate the docs that are derived from code: the fault table, the CLI's shared options
and the report's JSON schema.

Run: .venv/bin/python scripts/gen_docs.py  (tests/test_docs.py fails when they are stale)
"""

from __future__ import annotations

import json
from pathlib import Path

from netprobe._cliutil import SHARED_OPTIONS
from netprobe.options import Options
from netprobe.report import FAULT_CODES, WARNING_CODES, Report

ROOT = Path(__file__).resolve().parent.parent


def fault_table() -> str:
    lines = ["| code | layer | meaning |", "|---|---|---|"]
    lines += [f"| `{code}` | `{layer}` | {text} |" for code, (layer, text) in FAULT_CODES.items()]
    lines += ["", "| warning | meaning |", "|---|---|"]
    lines += [f"| `{code}` | {text} |" for code, text in WARNING_CODES.items()]
    return "\n".join(lines) + "\n"


def cli_options_table() -> str:
    """The shared options of the probing commands, from the same definitions as --help."""
    lines = ["| option | meaning | default |", "| --- | --- | --- |"]
    for option in SHARED_OPTIONS:
        field = Options.model_fields[option.field]
        flag = f"`{option.flag}{' ' + option.metavar if option.metavar else ''}`"
        meaning = (field.description or option.field).rstrip(".")
        if option.turns_off:
            meaning = f"turns off: {meaning[0].lower()}{meaning[1:]}"
            default = "on"
        elif option.repeatable:
            meaning += "; repeatable"
            default = "none"
        else:
            value = field.default
            default = f"{value:g}" if isinstance(value, float) else str(value).lower()
        lines.append(f"| {flag} | {meaning} | {default} |")
    return "\n".join(lines) + "\n"


def schema() -> str:
    return (
        json.dumps(Report.model_json_schema(mode="serialization"), indent=2, sort_keys=True) + "\n"
    )


def main() -> None:
    (ROOT / "docs" / "faults-table.md").write_text(fault_table())
    (ROOT / "docs" / "cli-options-table.md").write_text(cli_options_table())
    (ROOT / "docs" / "schema" / "report.schema.json").write_text(schema())


if __name__ == "__main__":
    main()
