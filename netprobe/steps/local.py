"""Local host health: this host's own sockets toward the target, ports and file descriptors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LocalHealth"]


class LocalHealth(BaseModel):
    """Read from /proc (Linux, no root needed); ``available`` is false elsewhere, with why."""

    model_config = ConfigDict(frozen=True)

    available: bool
    reason: str | None = None
    toward: list[str] = Field(
        default_factory=list, description="The endpoints counted (address:port of the target)."
    )
    states: dict[str, int] = Field(
        default_factory=dict,
        description="This host's TCP sockets toward the target, by state (SYN_SENT, "
        "ESTABLISHED, TIME_WAIT, CLOSE_WAIT, ...): every process of this network namespace.",
    )
    sockets_scanned: int | None = None
    scan_skipped: str | None = Field(
        None, description="Why the socket table was not read (too large to scan cheaply)."
    )
    port_range: tuple[int, int] | None = Field(
        None, description="net.ipv4.ip_local_port_range: the ephemeral ports for connect()."
    )
    open_fds: int | None = None
    fd_soft_limit: int | None = Field(None, description="RLIMIT_NOFILE soft limit (ulimit -n).")

    @property
    def port_range_size(self) -> int | None:
        return None if self.port_range is None else self.port_range[1] - self.port_range[0] + 1

    def count(self, state: str) -> int:
        return self.states.get(state, 0)
