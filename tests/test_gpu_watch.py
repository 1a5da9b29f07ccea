"""Watching: a kernel log that grows while the watcher runs, NVML's Xid events, de-duplication, cep.db history."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cep_core.gpu.kernel_log import parse_kernel_log
from cep_core.gpu.replay import ReplaySource
from cep_core.gpu.sources import (
    FileFollower,
    JournalReader,
    KmsgReader,
    NoReadableSource,
    first_readable,
    read_kernel_history,
)
from cep_core.gpu.store import open_store, recent_events, record_events
from cep_core.gpu.watch import Deduper, XidWatcher

DATA = Path(__file__).parent / "data" / "gpu"
XID_79 = (
    "May 18 19:02:39 gpu-host kernel: [ 5107.644336] NVRM: Xid (PCI:0000:5d:00): 79, pid='<unknown>', "
    "name=<unknown>, GPU has fallen off the bus."
)
XID_13 = (
    "May 18 19:02:40 gpu-host kernel: NVRM: Xid (PCI:0000:18:00): 13, pid=41230, name=python, Graphics "
    "SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter"
)


def wait_for(watcher, n, timeout=10.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        ev = watcher.get(timeout=0.1)
        if ev is not None:
            got.append(ev)
    return got


def test_watcher_follows_a_file_that_grows_while_it_runs(tmp_path):
    log = tmp_path / "kern.log"
    log.write_text("May 18 19:00:00 gpu-host kernel: usb 1-1: new high-speed USB device\n" + XID_13 + "\n")
    follower = FileFollower(log)
    watcher = XidWatcher(home=tmp_path / "home", readers=[follower], use_nvml=False)
    with watcher:
        assert watcher.log_source.name == str(log)
        assert follower.ready.wait(10), "the follower never opened the log"
        assert watcher.get(timeout=0.2) is None  # the old line is history, not news
        with log.open("a") as fh:
            fh.write("May 18 19:02:38 gpu-host kernel: eth0: link up\n")
            fh.write(XID_79[:40])  # half a line: nothing yet
            fh.flush()
            assert watcher.get(timeout=0.3) is None
            fh.write(XID_79[40:] + "\n")
        (ev,) = wait_for(watcher, 1)
        assert (ev.xid, ev.pci, ev.severity, ev.source) == (79, "0000:5d:00", "fatal", str(log))
        with log.open("a") as fh:  # and again, a second growth
            fh.write(XID_13 + "\n")
        (ev2,) = wait_for(watcher, 1)
        assert (ev2.xid, ev2.pid, ev2.process) == (13, 41230, "python")
    # the events are in cep.db and survive a new connection (a restart)
    stored = recent_events(open_store(tmp_path / "home"))
    assert [e.xid for e in stored] == [79, 13]


def test_watcher_survives_rotation(tmp_path):
    log = tmp_path / "kern.log"
    log.write_text("")
    follower = FileFollower(log)
    with XidWatcher(home=tmp_path / "home", readers=[follower], use_nvml=False) as watcher:
        assert follower.ready.wait(10), "the follower never opened the log"
        log.rename(tmp_path / "kern.log.1")
        log.write_text(XID_79 + "\n")
        (ev,) = wait_for(watcher, 1)
        assert ev.xid == 79


def test_nvml_event_api_and_kernel_log_report_one_xid_once(tmp_path):
    """The replay source plays NVML's Xid event API; the same Xid 79 also reaches the kernel log."""
    log = tmp_path / "kern.log"
    log.write_text("")
    source = ReplaySource(DATA / "fallen-off-bus-8x-h100.json")
    with XidWatcher(home=tmp_path / "home", readers=[FileFollower(log)], nvml_source=source) as watcher:
        assert [a.ok for a in watcher.attempts] == [True, True]
        for _ in range(4):
            source.begin_sample()  # snapshot 3: GPU 3 falls off the bus, NVML posts Xid 79
        (nvml_ev,) = wait_for(watcher, 1)
        assert (nvml_ev.source, nvml_ev.xid, nvml_ev.pci) == ("nvml", 79, "0000:5d:00")
        with log.open("a") as fh:
            fh.write(XID_79 + "\n")
            fh.write("[ 5107.644410] NVRM: GPU 0000:5d:00.0: GPU has fallen off the bus.\n")
        assert wait_for(watcher, 1, timeout=2.0) == []  # the kernel's copies of the same failure
        with log.open("a") as fh:
            fh.write(XID_13 + "\n")  # a different Xid still gets through
        (ev,) = wait_for(watcher, 1)
        assert ev.xid == 13


def test_deduper_keeps_repeats_from_one_source_and_forgets_after_the_window():
    d = Deduper(window_s=30)
    (a,) = parse_kernel_log(XID_79, source="kmsg")
    (b,) = parse_kernel_log(XID_79, source="nvml")
    assert d.admit(a, now=0) and d.admit(a, now=1)  # the same source repeating is news
    assert not d.admit(b, now=2)
    assert d.admit(b, now=100)


def test_store_ignores_rereads_and_keeps_history(tmp_path):
    events = parse_kernel_log(XID_79 + "\n" + XID_13, boot_time=1_000.0)
    db = open_store(tmp_path)
    assert record_events(db, events) == 2
    assert record_events(db, events) == 0  # a watcher restart re-reading /dev/kmsg
    again = recent_events(open_store(tmp_path))
    assert [(e.xid, e.pci, e.pid) for e in again] == [(79, "0000:5d:00", None), (13, "0000:18:00", 41230)]
    assert os.stat(tmp_path / "cep.db").st_mode & 0o777 == 0o600


def test_when_nothing_is_readable_it_says_what_it_tried(tmp_path):
    locked = tmp_path / "locked.log"
    locked.write_text("x")
    locked.chmod(0)
    readers = [
        KmsgReader(str(tmp_path / "no-kmsg")),
        JournalReader("journalctl-not-here"),
        FileFollower(tmp_path / "missing.log"),
    ]
    if os.geteuid() != 0:  # root reads mode-0 files
        readers.append(FileFollower(locked))
    no_driver = not os.path.exists("/dev/nvidiactl")
    watcher = XidWatcher(home=tmp_path, readers=readers, use_nvml=no_driver)  # real NVML, which has no driver
    with pytest.raises(NoReadableSource) as info:
        watcher.start()
    msg = str(info.value)
    assert "no-kmsg: does not exist" in msg
    assert "journalctl-not-here" in msg or "journalctl -k -f: journalctl is not installed" in msg
    assert "missing.log: does not exist" in msg
    assert not no_driver or "NVML Xid events: NVML library not found" in msg
    if os.geteuid() != 0:
        assert "locked.log: permission denied" in msg
    assert "Fix:" in msg


def test_first_readable_stops_at_the_first_that_works(tmp_path):
    log = tmp_path / "kern.log"
    log.write_text(XID_13 + "\n")
    reader, attempts = first_readable(
        [KmsgReader(str(tmp_path / "none")), FileFollower(log), FileFollower(tmp_path / "never-probed")]
    )
    assert reader.name == str(log)
    assert [(a.ok, a.name.split("/")[-1]) for a in attempts] == [(False, "none"), (True, "kern.log")]
    events, _ = read_kernel_history([FileFollower(log)])
    assert [e.xid for e in events] == [13]


@pytest.mark.skipif(not os.access("/dev/kmsg", os.R_OK), reason="/dev/kmsg is not readable here")
def test_the_real_kmsg_reader_reads_this_kernel():
    reader = KmsgReader()
    assert reader.probe() is None
    records = reader.read_available()
    assert records and all(";" in r for r in records[:5])
    assert all(isinstance(e.xid, int | None) for e in parse_kernel_log("\n".join(records)))


def test_journal_reader_follows_a_json_stream(tmp_path):
    """journalctl has no journal on CI; a stand-in executable speaks its JSON output over a real pipe."""
    fake = tmp_path / "journalctl"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in *" -f "*)\n'
        '  printf \'%s\\n\' \'{"__REALTIME_TIMESTAMP":"1761387072000000","MESSAGE":"NVRM: Xid '
        "(PCI:0000:18:00): 13, pid=41230, name=python, Graphics SM Warp Exception\"}'\n"
        "  exec sleep 30;;\n"
        "esac\n"
        'printf \'%s\\n\' \'{"__REALTIME_TIMESTAMP":"1","MESSAGE":"Linux version 6.8"}\'\n'
    )
    fake.chmod(0o755)
    reader = JournalReader(str(fake))
    assert reader.probe() is None
    started = time.monotonic()
    with XidWatcher(home=tmp_path / "home", readers=[reader], use_nvml=False) as watcher:
        (ev,) = wait_for(watcher, 1)
    assert time.monotonic() - started < 8  # stop() ended the follower (and its subprocess) promptly
    assert (ev.xid, ev.pid, ev.process, ev.ts, ev.source) == (13, 41230, "python", 1761387072.0, reader.name)


def test_file_follower_reads_in_bounded_chunks(tmp_path, monkeypatch):
    """A big kern.log is read through LogTail: no single read asks for more than `max_read_bytes`, the
    one-shot read keeps the last `max_bytes` without a cut first line, and following hands over whole lines."""
    import threading

    log = tmp_path / "kern.log"
    lines = [f"May 18 19:00:00 gpu-host kernel: line {i:05d} " + "x" * 40 for i in range(2000)]
    log.write_text("\n".join(lines) + "\n")  # about 130 kB
    asked: list[int] = []
    real_pread = os.pread

    def spy(fd, size, offset):
        asked.append(size)
        return real_pread(fd, size, offset)

    monkeypatch.setattr(os, "pread", spy)
    follower = FileFollower(log, max_read_bytes=4096)
    tail = follower.read_available(max_bytes=10_000)
    assert 0 < len(tail) < 200 and tail == lines[-len(tail) :]
    assert asked and max(asked) <= 4096

    asked.clear()
    stop = threading.Event()
    got: list[str] = []
    for chunk in follower.follow(stop, from_start=True):
        got += chunk.splitlines()
        if len(got) >= len(lines):
            stop.set()
    assert got == lines
    assert max(asked) <= 4096 and len(asked) >= 130_000 // 4096


def test_gather_events_reads_the_readers_it_is_given_and_stores_what_they_hold(tmp_path):
    """The console passes its own readers; what they hold joins cep.db's history."""
    from cep_core.gpu.watch import gather_events

    log = tmp_path / "kern.log"
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(time.time() - 60))  # within the window
    log.write_text(stamp + XID_13[len("May 18 19:02:40") :] + "\n")
    events = gather_events(
        home=tmp_path / "home", readers=[KmsgReader(str(tmp_path / "none")), FileFollower(log)]
    )
    assert [e.xid for e in events] == [13]
    assert [e.xid for e in recent_events(open_store(tmp_path / "home"))] == [13]
    assert gather_events(home=tmp_path / "home", read_kernel_log=False, readers=[]) == events


def test_the_journal_history_is_a_bounded_read(tmp_path):
    """journalctl is asked for the newest entries only (a host with years of journal is not read whole), and
    what it gives back is parsed for Xids."""
    from cep_core.gpu.sources import JOURNAL_ENTRIES, read_kernel_history

    argv_file = tmp_path / "argv"
    fake = tmp_path / "journalctl"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {argv_file}\n'
        'printf \'%s\\n\' \'{"__REALTIME_TIMESTAMP":"1761387072000000","MESSAGE":"NVRM: Xid '
        "(PCI:0000:18:00): 79, pid=41230, name=python, GPU has fallen off the bus.\"}'\n"
    )
    fake.chmod(0o755)
    events, _attempts = read_kernel_history([JournalReader(str(fake))], window_s=10**10)
    assert [e.xid for e in events] == [79]
    history_call = argv_file.read_text().splitlines()[-1].split()
    assert history_call[history_call.index("-n") + 1] == str(JOURNAL_ENTRIES)
