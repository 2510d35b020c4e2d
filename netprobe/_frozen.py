"""Immutable building blocks of the report: a read-only mapping, and the frozen model base.

A report is a record of what was observed: nothing reachable from it may change after it was
built (``report.warnings.append(...)`` or ``evidence.data["x"] = 1`` would rewrite history).
Sequences are tuples; mappings are :class:`FrozenMap`, which validates and serialises as a
plain ``dict`` (same JSON, same JSON schema) but refuses item assignment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Self, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic_core import core_schema

__all__ = ["Frozen", "FrozenMap"]

K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    """A read-only mapping (``dict``'s reading methods, none of its writing ones)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._items: dict[K, V] = dict(items)

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(self._items)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        args = get_args(source)
        inner = handler.generate_schema(dict[args[0], args[1]] if args else dict)  # type: ignore[valid-type]
        return core_schema.no_info_after_validator_function(
            cls,
            inner,
            serialization=core_schema.wrap_serializer_function_ser_schema(
                lambda value, serialize: serialize(dict(value)), schema=inner
            ),
        )


class Frozen(BaseModel):
    """A frozen model; :meth:`replace` makes a changed copy, validated like a new one."""

    model_config = ConfigDict(frozen=True)

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, validated (lists become tuples, dicts read-only maps),
        unlike ``model_copy(update=...)``, which stores the values as given."""
        return self.model_validate({**self.__dict__, **changes})
