"""Local host health: the /proc parser and the local.* warning rules, as plain data."""

from __future__ import annotations

from pathlib import Path

from netprobe.classify.transport import local_warnings
from netprobe.probes.local import collect_local, count_states, proc_key
from netprobe.steps.local import LocalHealth

PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A1B2 0A00000A:0CEA 08 00000000:00000000 00:00000000 00000000     0        0 1
   1: 0100007F:A1B3 0A00000A:0CEA 06 00000000:00000000 00:00000000 00000000     0        0 0
   2: 0100007F:A1B4 0A00000A:0CEA 01 00000000:00000000 00:00000000 00000000     0        0 2
   3: 0100007F:A1B5 0B00000A:0CEA 08 00000000:00000000 00:00000000 00000000     0        0 3
"""


def test_proc_key_matches_the_kernel_format() -> None:
    assert proc_key("10.0.0.10", 3306) == "0A00000A:0CEA"
    assert proc_key("::1", 80) == "00000000000000000000000001000000:0050"


def test_count_states_toward_one_endpoint() -> None:
    counts, scanned = count_states(PROC_TCP.splitlines(), {proc_key("10.0.0.10", 3306)})
    assert counts == {"CLOSE_WAIT": 1, "TIME_WAIT": 1, "ESTABLISHED": 1}
    assert scanned == 4


def test_collect_local_reads_a_proc_tree(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(PROC_TCP)
    (tmp_path / "sys" / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "sys" / "net" / "ipv4" / "ip_local_port_range").write_text("40000\t40009\n")
    local = collect_local(["10.0.0.10"], 3306, proc=tmp_path)
    assert local.available and local.count("CLOSE_WAIT") == 1 and local.port_range == (40000, 40009)
    assert not collect_local(["10.0.0.10"], 1, proc=tmp_path / "missing").available


def test_collect_local_skips_huge_tables(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(PROC_TCP)
    (tmp_path / "net" / "sockstat").write_text("TCP: inuse 300000 orphan 0 tw 5 alloc 1 mem 1\n")
    local = collect_local(["10.0.0.10"], 3306, proc=tmp_path)
    assert local.scan_skipped is not None and local.states == {}


def _codes(local: LocalHealth) -> list[str]:
    return [w.code for w in local_warnings(local)]


def test_local_warning_rules() -> None:
    quiet = LocalHealth(
        available=True,
        states={"CLOSE_WAIT": 2, "TIME_WAIT": 3},
        port_range=(32768, 60999),
        open_fds=10,
        fd_soft_limit=1024,
    )
    assert _codes(quiet) == []
    leak = quiet.model_copy(update={"states": {"CLOSE_WAIT": 10}})
    assert _codes(leak) == ["local.close_wait_leak"]
    tw = quiet.model_copy(update={"states": {"TIME_WAIT": 8}, "port_range": (40000, 40009)})
    assert _codes(tw) == ["local.time_wait_pressure"]
    fds = quiet.model_copy(update={"open_fds": 900})
    assert _codes(fds) == ["local.fd_pressure"]
    assert local_warnings(LocalHealth(available=False, reason="not Linux")) == []
