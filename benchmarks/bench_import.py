"""Import cost of ``import netprobe`` against importing its required dependencies alone.

Run: .venv/bin/python benchmarks/bench_import.py [N]
Results: benchmarks/RESULTS-import.md

Each statement runs N times (default 15, interleaved) in a fresh ``python -X importtime``
process; only the imports made by the statement count (not the interpreter's start-up). For
each we report the median total (the sum of the statement's top-level cumulative times: what
the statement cost), the median self time of its first module, and the modules loaded. Then,
for ``import netprobe``, which packages dominate (median self time summed per top-level
package) and whether the optional or CLI-only packages were loaded at all.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field

MARK = "--netprobe-bench-mark--"

#: The packages every diagnosis needs: the event loop layer and the report models (idna
#: and sniffio are small helpers of those). httpx, dnspython, cryptography, click and rich
#: are dependencies too, but needed only by some targets or the CLI: imported at first use.
CORE = "import anyio, pydantic, idna, sniffio"
ALL_DEPS = (
    "import anyio, pydantic, idna, sniffio, httpx, dns.resolver, dns.asyncquery, "
    "cryptography.x509, click, rich.console"
)
#: pydantic loads its model machinery (schema generation, pydantic-core, the plugin loader)
#: at the first model class: what any application defining one model pays.
CORE_MODEL = CORE + "; exec('class M(pydantic.BaseModel):\\n    x: int')"
STATEMENTS = {
    "`import netprobe`": "import netprobe",
    f"`{CORE}` (the core dependencies)": CORE,
    "the core dependencies and one pydantic model class": CORE_MODEL,
    "every dependency in pyproject (+ httpx, dnspython, cryptography, click, rich)": ALL_DEPS,
}
#: Loaded by ``import netprobe`` only when used.
LAZY = ("httpx", "httpcore", "rich", "click", "cryptography", "dns", "asyncpg", "asyncmy", "redis")


def bytecode_env(prefix: str) -> dict[str, str]:
    """Byte-code caching on, as in an installed package, the cache kept out of the checkout.

    This environment sets PYTHONDONTWRITEBYTECODE=1: netprobe (a source checkout) would be
    compiled on every import while its dependencies (installed wheels) load their .pyc files.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = prefix
    return env


def run_once(
    statement: str, env: dict[str, str]
) -> tuple[float, float, list[tuple[int, int, str]]]:
    """(total µs, first module's self µs, [(self, cumulative, name) of every import])."""
    code = f"import sys; sys.stderr.write({MARK!r} + '\\n'); {statement}"
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    ).stderr
    lines = err.split(MARK, 1)[1].splitlines()
    rows: list[tuple[int, int, str]] = []
    total = 0.0
    for line in lines:
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_text, cum_text, name = line.split(":", 1)[1].split("|", 2)
        self_v, cum_v = int(self_text), int(cum_text)
        rows.append((self_v, cum_v, name[1:]))
        if not name[1:].startswith(" "):  # a top-level import of the statement
            total += cum_v
    first_self = 0.0
    top_name = statement.split()[1].rstrip(",")
    for self_v, _cum, name in rows:
        if name.strip() == top_name:
            first_self = self_v
    return total, first_self, rows


@dataclass
class Samples:
    """Per statement label: totals and first-module self times (ms), modules loaded; for
    ``import netprobe``: self time per top-level package and per netprobe module (ms)."""

    totals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    selfs: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    modules: dict[str, set[str]] = field(default_factory=dict)
    per_package: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    own: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, label: str, statement: str, env: dict[str, str]) -> None:
        total, first_self, rows = run_once(statement, env)
        self.totals[label].append(total / 1000.0)
        self.selfs[label].append(first_self / 1000.0)
        self.modules[label] = {name.strip() for _s, _c, name in rows}
        if statement != "import netprobe":
            return
        sums: dict[str, float] = defaultdict(float)
        for self_us, _cum, name in rows:
            sums[name.strip().split(".")[0]] += self_us / 1000.0
            if name.strip().startswith("netprobe"):
                self.own[name.strip()].append(self_us / 1000.0)
        for pkg, ms in sums.items():
            self.per_package[pkg].append(ms)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    samples = Samples()
    with tempfile.TemporaryDirectory(prefix="netprobe-pyc-") as prefix:
        env = bytecode_env(prefix)
        for statement in STATEMENTS.values():  # compile once: every measured run loads .pyc
            run_once(statement, env)
        for _ in range(n):
            for label, statement in STATEMENTS.items():
                samples.add(label, statement, env)
    report(n, samples)


def report(n: int, s: Samples) -> None:
    totals, selfs, modules, per_package, own = (
        s.totals,
        s.selfs,
        s.modules,
        s.per_package,
        s.own,
    )
    print(f"Command: .venv/bin/python benchmarks/bench_import.py {n}")
    print(f"python {sys.version.split()[0]}, n={n} fresh processes per statement (interleaved)\n")
    print("| statement | median total (ms) | median self of the first module (ms) | modules |")
    print("|---|---|---|---|")
    for label in STATEMENTS:
        print(
            f"| {label} | {statistics.median(totals[label]):.1f} | "
            f"{statistics.median(selfs[label]):.1f} | {len(modules[label])} |"
        )
    core_label = next(k for k in STATEMENTS if STATEMENTS[k] == CORE)
    np_label = "`import netprobe`"
    ratio = statistics.median(totals[np_label]) / statistics.median(totals[core_label])
    extra = statistics.median(totals[np_label]) - statistics.median(totals[core_label])
    print(f"\n`import netprobe` / core dependencies: **{ratio:.2f}×** (+{extra:.1f} ms)")
    model_label = next(k for k in STATEMENTS if STATEMENTS[k] == CORE_MODEL)
    ratio_m = statistics.median(totals[np_label]) / statistics.median(totals[model_label])
    extra_m = statistics.median(totals[np_label]) - statistics.median(totals[model_label])
    print(
        f"`import netprobe` / core dependencies with one model: **{ratio_m:.2f}×** "
        f"(+{extra_m:.1f} ms)\n"
    )

    print("Packages `import netprobe` spends its time in (median self time summed per package):\n")
    print("| package | ms |")
    print("|---|---|")
    ranked = sorted(per_package.items(), key=lambda kv: -statistics.median(kv[1]))
    for pkg, values in ranked[:12]:
        print(f"| {pkg} | {statistics.median(values):.1f} |")
    print("\nnetprobe's own modules, the most expensive (median self time):\n")
    print("| module | ms |")
    print("|---|---|")
    for mod, values in sorted(own.items(), key=lambda kv: -statistics.median(kv[1]))[:10]:
        print(f"| {mod} | {statistics.median(values):.1f} |")
    loaded = modules[np_label]
    print("\nOptional or CLI-only packages loaded by `import netprobe`:\n")
    print("| package | loaded |")
    print("|---|---|")
    for pkg in LAZY:
        hit = any(m == pkg or m.startswith(pkg + ".") for m in loaded)
        print(f"| {pkg} | {'**yes**' if hit else 'no'} |")


if __name__ == "__main__":
    main()
