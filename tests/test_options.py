"""Options are validated before any I/O: every mistake is one InvalidOption line naming it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import netprobe
from netprobe.options import make_options

SECRET = "Bearer s3cr3t-T0ken"
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"timeout": math.nan}, "finite number"),
        ({"timeout": math.inf}, "finite number"),
        ({"connect_timeout": -math.inf}, "finite number"),
        ({"expiry_warning_days": math.inf}, "finite number"),
        ({"headers": {"bad name": "x"}}, "HTTP header name 'bad name' is not a token"),
        ({"headers": {"X-A": "a\r\nInjected: 1"}}, "line break"),
        ({"headers": {"": "x"}}, "is not a token"),
        ({"method": "G3T"}, "HTTP method 'G3T' is not a token"),
        ({"nameservers": ["bogus"]}, "name server 'bogus' must be an IP address"),
    ],
)
def test_bad_options_name_the_problem(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(netprobe.InvalidOption) as info:
        make_options(**kwargs)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    # Our own validators already name the value: no "(got ...)" echo of it.
    assert "(got" not in message or "finite" in message


def test_header_values_are_never_echoed() -> None:
    """A mistyped Authorization header must not print the credential in the error."""
    for headers in ({"Authorization": SECRET + "\r\n"}, {"Authorization": 5, "X": SECRET}):
        with pytest.raises(netprobe.InvalidOption) as info:
            make_options(headers=headers)
        assert "s3cr3t" not in str(info.value)


def test_long_inputs_are_cut_in_the_message() -> None:
    with pytest.raises(netprobe.InvalidOption) as info:
        make_options(icmp_count="x" * 10_000)
    assert len(str(info.value)) < 300


@pytest.mark.anyio
async def test_bad_header_is_a_usage_error_not_a_verdict() -> None:
    """Before the fix a CR/LF in a header became l7.connection_closed: the wrong team."""
    with pytest.raises(netprobe.InvalidOption, match="line break"):
        await netprobe.diagnose("http://127.0.0.1:1/", headers={"X-A": "a\nb"})


def test_valid_headers_pass() -> None:
    opts = make_options(headers={"Authorization": SECRET, "X-Request-Id": "abc-1"})
    assert opts.headers["X-Request-Id"] == "abc-1"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": math.inf},
        {"timeout": math.nan},
        {"interval": math.nan},
        {"max_interval": math.inf},
        {"max_interval": 0.0, "interval": 0.0},
    ],
)
async def test_wait_rejects_non_finite_durations_before_io(kwargs: dict[str, Any]) -> None:
    """timeout=inf used to wait forever and max_interval=inf to sleep until the deadline."""
    with pytest.raises(netprobe.InvalidOption, match="finite number greater than 0"):
        await netprobe.wait_until_ready(["127.0.0.1:1"], **kwargs)


# -- the keyword options are typed, end to end ------------------------------------------------


def test_the_keyword_types_are_the_options() -> None:
    """OptionsKwargs (what diagnose(**kwargs) accepts) holds every Options field, with the
    field's own type, or a wider one the field's validator converts (WIDER_KEYWORDS)."""
    from typing import get_type_hints

    from netprobe.options import WIDER_KEYWORDS, Options, OptionsKwargs, RungOptionsKwargs

    keywords = get_type_hints(OptionsKwargs)
    assert set(keywords) == set(Options.model_fields)
    assert set(get_type_hints(RungOptionsKwargs)) == set(Options.model_fields) - {"timeout"}
    for name, field in Options.model_fields.items():
        expected = WIDER_KEYWORDS.get(name, field.annotation)
        assert keywords[name] == expected, name


MISTAKES = """
import netprobe

async def main() -> None:
    await netprobe.diagnose("db:5432", timeout=5, nameservers=["10.0.0.2"])  # fine
    await netprobe.diagnose("db:5432", timout=5)
    await netprobe.diagnose("db:5432", connect_timeout="3")
    await netprobe.diagnose_many(["db:5432"], canary=1.5)
    await netprobe.probe_pool("db:5432", size=3, icmp_count="3")
    await netprobe.wait_until_ready("db:5432", timeout=5, verfy=False)
"""


def test_a_misspelt_or_mistyped_option_fails_mypy_strict(tmp_path: Path) -> None:
    """diagnose("db:5432", timout=5) is a type error, not only an InvalidOption at run time."""
    import subprocess
    import sys

    snippet = tmp_path / "mistakes.py"
    snippet.write_text(MISTAKES)
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(ROOT / ".mypy_cache"), str(snippet)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    lines = {int(line.split(":")[1]) for line in errors}
    assert lines == {6, 7, 8, 9, 10}, out.stdout  # every mistake, and the fine call passes
    assert 'Unexpected keyword argument "timout"' in out.stdout
    assert 'Unexpected keyword argument "verfy"' in out.stdout
