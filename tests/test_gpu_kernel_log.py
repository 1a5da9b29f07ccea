"""Kernel-log parsing, from real kernel lines quoted in public bug reports (source in the comment of each).

Where no public report shows an Xid in a given carrier (a localised syslog month, `dmesg --time-format
iso`, a raw /dev/kmsg record), the test joins a real carrier prefix from one report with a real Xid message
from another, and says so.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core.gpu.kernel_log import KernelLogParser, normalize_pci, parse_kernel_log, since

NOW = datetime(2026, 11, 25, 12, 0, 0).timestamp()


def one(line: str, **kw):
    events = parse_kernel_log(line, now=NOW, **kw)
    assert len(events) == 1, events
    return events[0]


# --- every carrier ------------------------------------------------------------------------------------------


def test_plain_dmesg_unknown_pid_and_name():
    # vllm-project/vllm#5901 (A800, driver 535)
    ev = one(
        "[93297.027938] NVRM: Xid (PCI:0000:43:00): 13, pid='<unknown>', name=<unknown>, Graphics "
        "Exception: ESR 0x52e7b0=0x101000e 0x52e7b4=0x4 0x52e7a8=0xc81eb60 0x52e7ac=0x1174"
    )
    assert (ev.xid, ev.pci, ev.pid, ev.process, ev.kind, ev.severity) == (
        13,
        "0000:43:00",
        None,
        None,
        "xid",
        "warn",
    )
    assert ev.uptime == pytest.approx(93297.027938)
    assert ev.ts is None  # since-boot time and no boot time given
    assert ev.message.startswith("Graphics Exception: ESR 0x52e7b0")


def test_plain_dmesg_boot_time_gives_wall_clock():
    ev = one(
        "[24128.834365] NVRM: Xid (PCI:0000:01:00): 31, Ch 00000003, engmask 00000101, intr 10000000",
        boot_time=1_700_000_000.0,
    )  # Bumblebee-Project/Bumblebee#677
    assert ev.ts == pytest.approx(1_700_000_000.0 + 24128.834365)
    assert (ev.xid, ev.pid, ev.message) == (31, None, "Ch 00000003, engmask 00000101, intr 10000000")


def test_dmesg_T_with_pid_and_name():
    # leptonai/gpud#46 (`dmesg --ctime`)
    ev = one(
        "[Fri Aug 30 11:43:14 2024] NVRM: Xid (PCI:0000:cb:00): 109, pid=1797828, name=pt_main_thread, "
        "Ch 00000008, errorString CTX SWITCH TIMEOUT, Info 0x58005"
    )
    assert (ev.xid, ev.pci, ev.pid, ev.process) == (109, "0000:cb:00", 1797828, "pt_main_thread")
    assert ev.ts == datetime(2024, 8, 30, 11, 43, 14).timestamp()
    assert ev.message == "Ch 00000008, errorString CTX SWITCH TIMEOUT, Info 0x58005"


def test_dmesg_T_single_digit_day_and_contained_ecc():
    # akash-network/support#244 (`dmesg -T | grep NVRM`, 8x H100)
    ev = one(
        "[Fri Aug  9 13:32:56 2024] NVRM: Xid (PCI:0000:00:08): 94, pid='<unknown>', name=<unknown>, "
        "Contained: SM (0x1). RST: No, D-RST: No"
    )
    assert (ev.xid, ev.pci, ev.pid, ev.process, ev.severity) == (94, "0000:00:08", None, None, "warn")
    assert ev.ts == datetime(2024, 8, 9, 13, 32, 56).timestamp()
    ev = one(
        "[Mon Aug  5 03:54:13 2024] NVRM: Xid (PCI:0000:00:07): 31, pid=2512125, name=python3.10, Ch "
        "00000008, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_8 faulted @ 0x73ac_1c000000. "
        "Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_WRITE"
    )
    assert (ev.pid, ev.process) == (2512125, "python3.10")


def test_syslog_kern_log_with_uptime_inside():
    # gist kohsuke/84ce815d0a8ad85ecaf6 (/var/log/kern.log)
    ev = one(
        "Dec 23 23:30:56 rescue kernel: [ 179.437933] NVRM: Xid (PCI:0000:01:00): 32, Channel ID "
        "00000005 intr 00008000"
    )
    assert (ev.xid, ev.pci, ev.uptime) == (32, "0000:01:00", pytest.approx(179.437933))
    # December read in November 2026 belongs to 2025, not to the future
    assert ev.ts == datetime(2025, 12, 23, 23, 30, 56).timestamp()


def test_old_form_without_pci_prefix():
    # pastebin.com/NGng33SB (syslog, 2010s driver)
    ev = one(
        "Nov 22 18:29:55 hostname kernel: [ 966.503025] NVRM: Xid (0000:01:00): 31, Ch 0000000b, engmask "
        "00000120, intr 10000000"
    )
    assert (ev.xid, ev.pci) == (31, "0000:01:00")
    assert ev.ts == datetime(2026, 11, 22, 18, 29, 55).timestamp()
    # NVIDIA's Xid document's own example of the old form
    assert one("NVRM: Xid (0000:03:00): 14, Channel 00000001").xid == 14


@pytest.mark.parametrize(
    "prefix, month",
    [
        ("июл 27 14:08:03 laptop kernel: ", 7),  # ru_RU journal prefix: ask.fedoraproject.org/t/15757
        ("Mär 27 14:08:03 laptop kernel: ", 3),  # de_DE
        ("déc. 27 14:08:03 laptop kernel: ", 12),  # fr_FR (abbreviations end with a dot)
        ("27 janv. 14:08:03 laptop kernel: ", 1),  # day-first locales
        ("11月 27 14:08:03 laptop kernel: ", 11),  # zh_CN / ja_JP
    ],
)
def test_syslog_in_other_locales(prefix, month):
    # message: leptonai/gpud#500 (real Xid 119 line)
    ev = one(
        prefix + "NVRM: Xid (PCI:0000:9b:00): 119, pid=4071838, name=python, Timeout after 45s of waiting "
        "for RPC response from GPU4 GSP! Expected function 76 (GSP_RM_CONTROL) (0x20801702 0x4)."
    )
    assert (ev.xid, ev.severity, ev.pid, ev.process) == (119, "fatal", 4071838, "python")
    assert datetime.fromtimestamp(ev.ts).month == month


def test_journalctl_forms():
    # NVIDIA/open-gpu-kernel-modules#1150 (journalctl, hostname column cut by the reporter)
    ev = one(
        "kernel: NVRM: Xid (PCI:0000:dc:00): 45, pid=1818990, name=python3, Ch 00000001 caused by "
        "previous Xid 149"
    )
    assert (ev.xid, ev.pid, ev.process, ev.severity) == (45, 1818990, "python3", "info")
    assert ev.message == "Ch 00000001 caused by previous Xid 149"
    # journalctl -o short-iso prefix, real message (NVIDIA/NVSentinel#155)
    ev = one(
        "2025-10-25T10:11:12+0000 gpu-node-7 kernel: NVRM: Xid (PCI:0000:44:00): 79, GPU has fallen off the bus"
    )
    assert (ev.xid, ev.severity) == (79, "fatal")
    assert ev.ts == datetime.fromisoformat("2025-10-25T10:11:12+00:00").timestamp()
    # journalctl -o json (what the watcher reads)
    ev = one(
        '{"__REALTIME_TIMESTAMP":"1761387072000000","MESSAGE":"NVRM: Xid (PCI:0000:44:00): 79, GPU has '
        'fallen off the bus","_TRANSPORT":"kernel"}'
    )
    assert (ev.xid, ev.ts) == (79, 1761387072.0)


def test_dmesg_time_format_iso():
    # prefix: leptonai/gpud#338 (`dmesg --decode --time-format iso`); message: leptonai/gpud#500
    ev = one(
        "kern  :err   : 2025-01-25T10:34:54,859532+00:00 NVRM: Xid (PCI:0000:9b:00): 119, pid=28232, "
        "name=cache_mgr_main, Timeout after 45s of waiting for RPC response from GPU4 GSP!"
    )
    assert (ev.xid, ev.pid, ev.process) == (119, 28232, "cache_mgr_main")
    assert ev.ts == pytest.approx(datetime.fromisoformat("2025-01-25T10:34:54.859532+00:00").timestamp())
    ev = one("2023-12-22T12:26:24,559615-08:00 NVRM: Xid (PCI:0000:01:00): 43, pid=7, name=a, Ch 00000008")
    assert ev.ts == pytest.approx(datetime.fromisoformat("2023-12-22T12:26:24.559615-08:00").timestamp())


def test_dev_kmsg_records():
    # record layout: fluent/fluent-bit#42 ("6,222,40009803,-;..."); message: leptonai/gpud#1174 (kmsg input)
    ev = one(
        "3,1234,5107644336,-;NVRM: Xid (PCI:0000:9b:00): 94, pid=1234, name=python3, Contained ECC error",
        boot_time=1_000_000.0,
    )
    assert (ev.xid, ev.pid, ev.process, ev.message) == (94, 1234, "python3", "Contained ECC error")
    assert ev.uptime == pytest.approx(5107.644336)
    assert ev.ts == pytest.approx(1_000_000.0 + 5107.644336)
    ev = one("4,88,77,-;NVRM: Xid (PCI:0019:01:00): 149, NETIR Fatal XC0 i0 Link -1 (0x000fe406 0x00000000)")
    assert (ev.xid, ev.pci) == (149, "0019:01:00")
    # continuation lines of a record (" KEY=value") are not messages
    assert parse_kernel_log(" SUBSYSTEM=pci\n DEVICE=+pci:0000:01:00.0") == []


def test_mig_form():
    # NVIDIA's A100 memory error management guide, quoted in open-gpu-kernel-modules' source comments
    ev = one(
        "NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, pid=7194, Contained: CE User Channel (0x9). RST: No, D-RST: No"
    )
    assert (ev.xid, ev.pci, ev.gpu_instance, ev.compute_instance, ev.pid, ev.process) == (
        94,
        "0000:01:00",
        5,
        None,
        7194,
        None,
    )
    ev = one("NVRM: Xid (PCI:0000:3b:00 GPU-I:01 GPU-CI:02): 13, pid=9, name=a, Graphics Exception")
    assert (ev.gpu_instance, ev.compute_instance, ev.process) == (1, 2, "a")


def test_pid_and_name_shapes():
    # the WSL report shape, and stas00/ml-engineering (pid without a name)
    ev = one(
        "[ 1.0] NVRM: Xid (PCI:0000:01:00): 13, pid=35097, name=SpaceEngine.exe, Graphics SM Warp Exception"
    )
    assert (ev.pid, ev.process, ev.message) == (35097, "SpaceEngine.exe", "Graphics SM Warp Exception")
    ev = one(
        "NVRM: Xid (PCI:0000:10:1c): 63, pid=1896, Row Remapper: New row marked for remapping, reset gpu "
        "to activate."
    )
    assert (ev.pid, ev.process) == (1896, None)
    assert ev.message.startswith("Row Remapper: New row marked")
    ev = one("NVRM: Xid (PCI:0000:5d:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.")
    assert (ev.pid, ev.process, ev.message) == (None, None, "GPU has fallen off the bus.")


def test_fallen_off_bus_three_line_form():
    # NVIDIA/NVSentinel#155, verbatim dmesg
    text = """[ 1843.308145] NVRM: The NVIDIA GPU 0000:b3:00.0
               NVRM: (PCI ID: 10de:26b5) installed in this system has
               NVRM: fallen off the bus and is not responding to commands.
[ 1843.439662] NVRM: The NVIDIA probe routine failed for 1 device(s).
[ 1843.439669] NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  570.158.01  Release Build  (dvs-builder@U22-I3-B10-02-5)  Mon Jun  2 13:13:04 UTC 2025
"""
    events = parse_kernel_log(text)
    assert len(events) == 1
    ev = events[0]
    assert (ev.kind, ev.xid, ev.pci, ev.severity) == ("fallen_off_bus", None, "0000:b3:00", "fatal")
    assert ev.uptime == pytest.approx(1843.308145)  # the time of the first line
    assert "10de:26b5" in ev.message and "not responding" in ev.message


def test_fallen_off_bus_single_line_and_through_kmsg():
    # the Ubuntu how-to's message ("NVRM: GPU 0000:01:00.0: GPU has fallen off the bus.")
    ev = one("[  123.4] NVRM: GPU 0000:01:00.0: GPU has fallen off the bus.")
    assert (ev.kind, ev.pci, ev.xid) == ("fallen_off_bus", "0000:01:00", None)
    # the three-line form arriving as three /dev/kmsg records
    p = KernelLogParser(boot_time=0.0)
    out = []
    for rec in [
        "3,10,1843308145,-;NVRM: The NVIDIA GPU 0000:b3:00.0",
        "3,11,1843308146,c;NVRM: (PCI ID: 10de:26b5) installed in this system has",
        "3,12,1843308147,c;NVRM: fallen off the bus and is not responding to commands.",
    ]:
        out += p.feed(rec)
    assert [(e.kind, e.pci) for e in out] == [("fallen_off_bus", "0000:b3:00")]


def test_fallen_off_bus_head_without_tail_is_nothing():
    # A "The NVIDIA GPU" line followed by unrelated lines is not a fall.
    text = (
        "[1.0] NVRM: The NVIDIA GPU 0000:b3:00.0\n[1.1] usb 1-1: new device\n[1.2] usb 1-1: more\n"
        "[1.3] usb 1-1: again\n[1.4] NVRM: fallen off the bus and is not responding to commands.\n"
    )
    events = parse_kernel_log(text)
    assert [(e.kind, e.pci) for e in events] == [("fallen_off_bus", None)]  # the orphan tail, no GPU named


# --- not Xid reports ----------------------------------------------------------------------------------------

NOT_XID = [
    "[ 1843.439662] NVRM: The NVIDIA probe routine failed for 1 device(s).",
    "Dec 23 23:30:56 rescue kernel: [ 179.437927] NVRM: GPU at PCI:0000:01:00: GPU-bc0fa0b9-cac2-f507-b715-9bebdb69c71e",
    "[Wed Jul 31 23:14:18 2024] NVRM: GPU Board Serial Number: 1650423013443",
    "[   21.091872] NVRM: GPU 0000:01:00.0: RmInitAdapter failed! (0x22:0x56:894)",
    "[   21.238204] NVRM: osInitNvMapping: *** Cannot attach gpu",
    "[Fri Aug 30 11:11:22 2024] nvidia-peermem nv_get_p2p_free_callback:127 ERROR detected invalid context, "
    "skipping further processing",
    "Dec 12 03:12:06 gputest kernel: NVRM nvCheckOkFailedNoLog: Check failed: Requested object not found "
    "[NV_ERR_OBJECT_NOT_FOUND] (0x00000057) returned from gisubscriptionGetGPUInstanceSubscription",
    "line kern  :err   : 2025-01-25T10:34:54,859532+00:00 nvidia-nvswitch1: SXid (PCI:0000:84:00.0): 12028, "
    "Data {0x000001c0, 0x00bd5c8a, 0x00000500, 0x00000064}",
    "июл 27 14:08:04 laptop kernel: kernel BUG at lib/list_debug.c:51!",
    "5,0,0,-;Linux version 6.18.44 (builder@sandboxing) #1 SMP PREEMPT_DYNAMIC",
    "Feb 14 05:03:41 000-000-00000-1-gpu-1 kernel: mlx5_core 0000:ab:00.0 mlx5_5: Port: 1 Link INIT",
    "Mar 05 23:33:35 ivosung bumblebeed[1734]: [91063.874832] [ERROR][XORG] (EE) NVIDIA(GPU-0): Failed to "
    "initialize the NVIDIA GPU at PCI:1:0:0.  Please",
    "",
]


@pytest.mark.parametrize("line", NOT_XID)
def test_unrelated_nvrm_lines_and_noise_yield_nothing(line):
    assert parse_kernel_log(line) == []


def test_a_mixed_real_log_keeps_only_the_reports():
    text = "\n".join(
        NOT_XID[:6]
        + [
            "[93297.027938] NVRM: Xid (PCI:0000:43:00): 13, pid='<unknown>', name=<unknown>, Graphics Exception",
            NOT_XID[6],
            "[Fri Aug 30 11:43:14 2024] NVRM: Xid (PCI:0000:cb:00): 109, pid=1797828, name=pt_main_thread, Ch 8",
        ]
    )
    assert [e.xid for e in parse_kernel_log(text)] == [13, 109]


def test_normalize_pci_makes_nvml_and_kernel_agree():
    assert normalize_pci("00000000:B3:00.0") == normalize_pci("0000:b3:00") == "0000:b3:00"
    assert normalize_pci("PCI:0019:01:00") == "0019:01:00"
    assert normalize_pci("n/a") is None and normalize_pci(None) is None


def test_since_keeps_undated_events_and_drops_old_ones():
    events = parse_kernel_log(
        "[Fri Aug 30 11:43:14 2024] NVRM: Xid (PCI:0000:cb:00): 13, x\n"
        "[ 5.0] NVRM: Xid (PCI:0000:cb:00): 31, y"
    )
    cutoff = datetime(2025, 1, 1).timestamp()
    assert [e.xid for e in since(events, cutoff)] == [31]
    assert [e.xid for e in since(events, cutoff, boot_time=0.0)] == []


# --- the parser never raises --------------------------------------------------------------------------------

_fragments = st.sampled_from(
    [
        "NVRM: Xid (",
        "PCI:",
        "0000:01:00",
        " GPU-I:",
        "05",
        "): ",
        "79",
        ", ",
        "pid=",
        "'<unknown>'",
        "name=",
        "<unknown>",
        "fallen off the bus",
        "NVRM: The NVIDIA GPU ",
        "[",
        "]",
        " 5107.6",
        "kernel:",
        "{",
        "}",
        '"MESSAGE"',
        "6,1,2,-;",
        "\n",
        " ",
        "Dec 23 23:30:56 h ",
        "2025-01-25T10:34:54,8+00:00 ",
        "\x00",
        "é",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_fragments, st.text(max_size=20)), max_size=30).map("".join))
def test_parser_never_raises_on_any_text(text):
    events = parse_kernel_log(text)
    for ev in events:
        assert ev.kind in ("xid", "fallen_off_bus")
        assert ev.severity in ("fatal", "warn", "info")
        assert ev.xid is None or isinstance(ev.xid, int)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=10))
def test_streaming_parser_never_raises(lines):
    p = KernelLogParser(boot_time=0.0)
    for line in lines:
        p.feed(line)
    p.flush()


def test_name_at_the_end_of_the_line():
    ev = one("NVRM: Xid (PCI:0000:01:00): 43, pid=7, name=python3")
    assert (ev.pid, ev.process, ev.message) == (7, "python3", "")
