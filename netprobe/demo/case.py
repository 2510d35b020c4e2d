"""One demo case: what it diagnoses and which fault it must show (plain data)."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DemoCase"]


@dataclass(frozen=True)
class DemoCase:
    """One case: ``target`` and string ``options`` values may name fixtures (``{tcp.address}``)."""

    title: str
    target: str
    expect: str | None  # the fault code the case shows, None for healthy
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fixtures(self) -> frozenset[str]:
        """The names of the servers this case uses."""
        return frozenset(_names([self.target, *self.options.values()]))


def _names(value: Any) -> set[str]:
    if isinstance(value, str):
        fields = (f for _, f, _, _ in string.Formatter().parse(value) if f)
        return {re.split(r"[.\[]", f, maxsplit=1)[0] for f in fields}
    if isinstance(value, list | tuple):
        return {n for item in value for n in _names(item)}
    return set()
