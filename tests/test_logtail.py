"""LogTail: the file logic under the log view and `cep jobs logs -f` — complete lines only, bounded memory, truncation and replacement."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core.runs.tail import LogTail


def test_missing_file_gives_nothing_then_lines_once_it_appears(tmp_path):
    path = tmp_path / "stdout.log"
    tail = LogTail(path)
    assert tail.read_new().lines == []
    path.write_text("one\ntwo\n")
    assert tail.read_new().lines == ["one", "two"]
    assert tail.read_new().lines == []


def test_a_partial_line_waits_for_its_end(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("step 1\nstep")
    tail = LogTail(path)
    assert tail.read_new().lines == ["step 1"]
    with path.open("a") as handle:
        handle.write(" 2\n")
    assert tail.read_new().lines == ["step 2"]


def test_truncation_restarts_from_the_start_and_says_so(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("a long first line\nsecond\n")
    tail = LogTail(path)
    tail.read_new()
    path.write_text("new\n")  # truncated in place (same inode), shorter than our offset
    update = tail.read_new()
    assert update.reset == "truncated"
    assert update.lines == ["new"]


def test_replacement_by_a_new_file_restarts_and_says_so(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("old 1\nold 2\n")
    tail = LogTail(path)
    tail.read_new()
    other = tmp_path / "rotated.tmp"
    other.write_text("fresh 1\nfresh 2\nfresh 3\n")
    os.replace(other, path)
    update = tail.read_new()
    assert update.reset == "replaced"
    assert update.lines == ["fresh 1", "fresh 2", "fresh 3"]


def test_a_huge_log_is_read_from_its_tail_only(tmp_path):
    path = tmp_path / "stdout.log"
    with path.open("w") as handle:
        for i in range(200_000):
            handle.write(f"line {i}\n")
    tail = LogTail(path, skip_bytes=4096)
    update = tail.read_new()
    assert update.skipped_bytes > 1_000_000
    assert update.lines[-1] == "line 199999"
    assert sum(len(x) + 1 for x in update.lines) <= 4096
    assert all(x.startswith("line ") for x in update.lines)  # no half line where we jumped in


def test_a_line_without_end_is_shown_in_bounded_pieces(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("x" * 10_000)
    tail = LogTail(path, max_line_bytes=1000)
    update = tail.read_new()
    assert [len(x) for x in update.lines] == [1000] * 9
    assert len(tail._partial) == 1000  # the rest waits for its end, bounded


def test_reads_are_bounded_per_call(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("".join(f"{i}\n" for i in range(10_000)))
    tail = LogTail(path, max_read_bytes=1000, skip_bytes=10**9)
    first = tail.read_new()
    assert 0 < sum(len(x) + 1 for x in first.lines) <= 1000
    lines = first.lines
    while True:
        more = tail.read_new().lines
        if not more:
            break
        lines += more
    assert lines == [str(i) for i in range(10_000)]


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("ab\né\r"), max_size=300),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
)
def test_any_split_of_appends_yields_the_same_lines(tmp_path_factory, text, cuts):
    path = tmp_path_factory.mktemp("tail") / "log"
    data = text.encode()
    path.write_bytes(b"")
    tail = LogTail(path)
    got = []
    last = 0
    for cut in sorted(c for c in cuts if c <= len(data)) + [len(data)]:
        with path.open("ab") as handle:
            handle.write(data[last:cut])
        last = cut
        got += tail.read_new().lines
    complete = data[: data.rfind(b"\n") + 1] if b"\n" in data else b""
    expected = [p.decode("utf-8", "replace").rstrip("\r") for p in complete.split(b"\n")[:-1]]
    # A multi-byte character split across two reads must still decode as one character.
    assert got == expected


def test_follow_prints_every_line_of_a_fast_writer_in_bounded_chunks(tmp_path):
    """`cep jobs logs -f`'s reader: a real writer process appends 3 MB as fast as it can, then truncates the
    log and writes again; every line arrives once, in order, no yield larger than one read (and an unfinished line), and the
    truncation is announced."""
    import subprocess
    import sys

    from cep_core.jobs.follow import follow
    from cep_core.runs.tail import LINE_BYTES, READ_BYTES

    log = tmp_path / "stdout.log"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "p = sys.argv[1]\n"
            "with open(p, 'a') as f:\n"
            "    for i in range(30000):\n"
            "        f.write(f'step {i:06d} ' + 'x' * 88 + '\\n')\n"
            "time.sleep(0.5)\n"
            "with open(p, 'w') as f:\n"
            "    f.write('after truncation\\nthe end')\n",
            str(log),
        ]
    )
    notes: list[str] = []
    chunks = list(
        follow(log, stop=lambda: writer.poll() is not None, idle_timeout_ms=100, on_reset=notes.append)
    )
    assert writer.returncode == 0
    assert max(len(c.encode()) for c in chunks) <= READ_BYTES + LINE_BYTES
    lines = "".join(chunks).split("\n")
    steps = [x for x in lines if x.startswith("step ")]
    assert steps == [f"step {i:06d} " + "x" * 88 for i in range(30000)]
    assert lines[-2:] == ["after truncation", "the end"]  # the unfinished last line is handed over at the end
    assert notes == ["stdout.log was truncated; following it from its start"]


def test_follow_from_the_end_skips_what_was_already_there(tmp_path):
    from cep_core.jobs.follow import follow

    log = tmp_path / "stdout.log"
    log.write_text("old\n")
    stopped = iter([False, True])
    out = follow(log, stop=lambda: next(stopped), from_start=False, idle_timeout_ms=50)
    log.write_text("old\nnew\n")
    assert "".join(out) == "new\n"


def test_follow_shows_a_line_as_it_is_drawn_and_keeps_a_cut_character_whole(tmp_path):
    """A progress bar redrawn with \\r and no newline yet: `tail -f` shows it, so does `cep jobs logs -f`."""
    from cep_core.jobs.follow import follow

    log = tmp_path / "stdout.log"
    log.write_bytes(b"")
    done = []
    deadline = time.monotonic() + 10  # a follower that waits for the newline ends here instead of hanging
    out = follow(log, stop=lambda: bool(done) or time.monotonic() > deadline, idle_timeout_ms=50)

    def append(data: bytes) -> None:
        with log.open("ab") as handle:
            handle.write(data)

    append(b"loading  10%")
    assert next(out) == "loading  10%"
    append(b"\rloading 100% caf\xc3")  # the writer stopped inside the two bytes of an e-acute
    assert next(out) == "\rloading 100% caf"
    append(b"\xa9\nnext line\n")
    assert next(out) == "\u00e9\nnext line\n"
    done.append(True)
    assert list(out) == []


@given(st.binary(max_size=12))
def test_a_whole_prefix_holds_back_at_most_a_cut_character(data):
    from cep_core.runs.tail import utf8_whole_prefix

    cut = utf8_whole_prefix(data)
    assert len(data) - 3 <= cut <= len(data)
    if data.decode("utf-8", "ignore").encode() == data:  # well-formed text: nothing is held back
        assert cut == len(data)


@pytest.mark.parametrize("char", ["\u00e9", "\u20ac", "\U0001f600"])
def test_a_character_cut_anywhere_is_held_back_whole(char):
    from cep_core.runs.tail import utf8_whole_prefix

    encoded = char.encode()
    assert utf8_whole_prefix(b"a" + encoded) == 1 + len(encoded)
    for k in range(1, len(encoded)):
        assert utf8_whole_prefix(b"a" + encoded[:k]) == 1


def test_lines_written_to_a_rotated_file_are_read_before_its_successor(tmp_path):
    # logrotate renames kern.log and the logger keeps writing to the old file until it reopens: those lines
    # (an Xid among them) must not be lost when the follower moves on to the new file.
    path = tmp_path / "kern.log"
    path.write_text("one\n")
    tail = LogTail(path, skip_bytes=None)
    assert tail.read_new().lines == ["one"]
    with path.open("a") as old:
        os.rename(path, tmp_path / "kern.log.1")
        old.write("two: NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.\n")
    path.write_text("three\n")
    first = tail.read_new()
    assert first.lines == ["two: NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus."]
    assert first.reset == "" and first.pending_bytes == len("three\n")  # the new file waits: read again
    second = tail.read_new()
    assert second.reset == "replaced" and second.lines == ["three"]


def test_a_removed_file_is_followed_again_once_it_reappears(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("a\n")
    tail = LogTail(path, skip_bytes=None)
    assert tail.read_new().lines == ["a"]
    path.unlink()
    assert tail.read_new().lines == []
    path.write_text("b\n")
    update = tail.read_new()
    assert update.reset == "replaced" and update.lines == ["b"]
