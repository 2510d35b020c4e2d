"""Options are validated before any I/O: every mistake is one InvalidOption line naming it."""

from __future__ import annotations

import math
from typing import Any

import pytest

import netprobe
from netprobe.options import make_options

SECRET = "Bearer s3cr3t-T0ken"


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
