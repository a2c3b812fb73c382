"""No edit is lost when the disk fills or a write fails.

On a real small tmpfs (mounted here when the test runs as root with mount permitted): fill the
disk, make strokes, check they stay in memory and the failure is reported (no exception into
the editing code), free the space, let the retry write everything, then load the workspace
from disk alone and compare the label arrays. Plus a journal with a torn / corrupt record in
the middle: every later good record is still recovered."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest

from medview.annotation import EditHistory, LabelMap, paint
from medview.annotation.journal import HEAD, encode_record, scan_journal
from medview.annotation.workspace import Workspace, load_workspace, read_journal
from medview.io.volume import Volume
from tests.ui.conftest import loaded_window, main_window, t1_dir  # noqa: F401  (fixtures of the window test)

SHAPE = (10, 96, 112)


@pytest.fixture
def tmpfs(tmp_path):
    """A 3 MiB tmpfs mounted at tmp_path/disk (skipped with the reason when mounting is refused)."""
    if os.name != "posix" or not shutil.which("mount"):
        pytest.skip("no mount(8) on this system")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0777", "tmpfs", str(mnt)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {out.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the disk refuses (ENOSPC); return it."""
    filler = disk / "filler.bin"
    block = np.random.default_rng(0).bytes(64 * 1024)  # incompressible (tmpfs does not compress, anyway)
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        try:
            while True:  # the last few pages
                f.write(b"\0" * 512)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def make_labelmap() -> LabelMap:
    img = Volume(np.zeros(SHAPE, np.int16), spacing=(0.9, 0.9, 2.5), origin=(0.0, 0.0, 0.0),
                 meta={"SeriesInstanceUID": "1.2.826.0.1.99." + str(uuid.uuid4().int)[:12], "Modality": "MR"})
    return LabelMap.empty(img, reviewer="tester")


def stroke(lm: LabelMap, h: EditHistory, n: int) -> None:
    """Stroke n: a few dabs along a line, as the brush tool does (begin, dabs, end)."""
    rng = np.random.default_rng(500 + n)
    k = int(rng.integers(0, SHAPE[0]))
    j0, i0 = int(rng.integers(10, 80)), int(rng.integers(10, 90))
    h.begin("Brush")
    for t in range(5):
        h.add(paint(lm, (k, j0 + 2 * t, i0 + 3 * t), radius_mm=3, value=1 + n % 3))
    h.end()


def wait_until(cond, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def recovered_count(arr: np.ndarray, states: list[np.ndarray]) -> int:
    """The last stroke whose state the recovered labels equal (-1: none)."""
    for n in range(len(states) - 1, -1, -1):
        if np.array_equal(arr, states[n]):
            return n
    return -1


def test_disk_full_keeps_every_stroke_and_writes_them_when_space_returns(tmpfs, capsys):
    lm = make_labelmap()
    root = tmpfs / "ws"
    ws = Workspace.create(root, lm, autosave_delay=0.05, retry_interval=0.1)
    seen: list[str | None] = []
    ws.status_listeners.append(seen.append)
    h = ws.history
    states = [lm.array.copy()]
    for n in range(1, 4):  # some strokes while the disk has room
        stroke(lm, h, n)
        states.append(lm.array.copy())
    assert ws.flush(timeout=20)

    filler = fill(tmpfs)
    n_full = 12
    for n in range(4, 4 + n_full):  # never raises into the editing code
        stroke(lm, h, n)
        states.append(lm.array.copy())
    made = len(states) - 1
    assert ws.save_error is not None and "disk full" in ws.save_error and str(tmpfs) in ws.save_error
    assert "kept in memory" in ws.save_error and ws.unsaved
    assert seen and seen[0] == ws.save_error
    assert len(h.undo_names()) == made  # in memory: label map and history
    assert np.array_equal(lm.array, states[-1])
    time.sleep(0.5)  # a few retries while the disk is still full: still failing, still kept
    assert ws.save_error is not None and ws.unsaved

    filler.unlink()
    assert wait_until(lambda: ws.save_error is None and not ws.unsaved), ws.save_error
    assert seen[-1] is None  # the banner clears
    assert wait_until(lambda: ws.last_snapshot_seq >= ws.seq)

    # a crash now (no close): a fresh load from the disk alone has every stroke
    code = ("import sys, numpy as np\nfrom medview.annotation.workspace import load_workspace\n"
            "lm, seq = load_workspace(sys.argv[1])\nnp.save(sys.argv[2], lm.array)\nprint(seq)\n")
    out = subprocess.run([sys.executable, "-c", code, str(root), str(tmpfs / "loaded.npy")],
                         capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.returncode == 0, out.stderr
    arr = np.load(tmpfs / "loaded.npy")
    recovered = recovered_count(arr, states)
    with capsys.disabled():
        print(f"\nstrokes made={made} recovered={recovered} (disk full during {n_full})")
    assert recovered == made
    assert ws.close()
    lm2, _ = load_workspace(root)
    assert np.array_equal(lm2.array, states[-1])


def halt(ws: Workspace) -> None:
    """The autosave thread stops for good (as in a crash: no snapshot, no more retries)."""
    ws._stop_now.set()
    ws._stop.set()
    ws._queue.put(("wake", 0, None, None, None))
    ws._thread.join(timeout=10)
    assert not ws._thread.is_alive()


def test_journal_alone_recovers_every_stroke_after_a_full_disk(tmpfs):
    """No snapshot is written after the disk filled; the journal records kept in memory are
    written by the retry when space returns, then the process is gone without closing:
    recovery = the old snapshot + the journal."""
    lm = make_labelmap()
    root = tmpfs / "ws"
    ws = Workspace.create(root, lm, autosave_delay=1000, max_interval=1000, retry_interval=0.05)
    halt(ws)
    h = ws.history
    filler = fill(tmpfs)
    states = [lm.array.copy()]
    for n in range(1, 9):
        stroke(lm, h, n)
        states.append(lm.array.copy())
    assert ws.unsaved and ws.save_error and len(ws._pending) == 8
    assert read_journal(root / "journal.log") == []
    filler.unlink()
    assert ws._retry_journal()  # what the autosave thread does on each retry
    assert not ws._pending and len(read_journal(root / "journal.log")) == 8
    lm2, seq = load_workspace(root)
    assert seq == 8 and recovered_count(lm2.array, states) == 8


def test_write_failure_is_reported_not_raised_permission(tmp_path):
    """A read-only workspace folder (EACCES) behaves like a full disk: kept, reported, retried."""
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions; the tmpfs tests cover the failure path")
    lm = make_labelmap()
    root = tmp_path / "ws"
    ws = Workspace.create(root, lm, autosave_delay=0.05, retry_interval=0.1)
    os.chmod(root / "journal.log", 0o444)
    ws._jfd and os.close(ws._jfd)
    ws._jfd = None
    stroke(lm, ws.history, 1)
    assert ws.save_error and "permission denied" in ws.save_error and ws.unsaved
    os.chmod(root / "journal.log", 0o644)
    assert wait_until(lambda: ws.save_error is None and not ws.unsaved)
    ws.close()
    assert np.array_equal(load_workspace(root)[0].array, lm.array)


def _journal_of(n: int, tmp_path: Path) -> tuple[Path, list[np.ndarray], list[int]]:
    lm = make_labelmap()
    root = tmp_path / "ws"
    ws = Workspace.create(root, lm, autosave_delay=1000, max_interval=1000)
    halt(ws)  # journal only
    states = [lm.array.copy()]
    for i in range(1, n + 1):
        stroke(lm, ws.history, i)
        states.append(lm.array.copy())
    data = (root / "journal.log").read_bytes()
    starts, pos = [], 0
    while pos < len(data):
        starts.append(pos)
        _, size, _ = HEAD.unpack_from(data, pos)
        pos += HEAD.size + size
    assert len(starts) == n
    return root, states, starts


@pytest.mark.parametrize("damage", ["bitflip", "torn", "zeroed"])
def test_a_bad_record_in_the_middle_hides_no_later_record(tmp_path, damage):
    root, states, starts = _journal_of(10, tmp_path)
    jp = root / "journal.log"
    good = read_journal(jp)
    data = bytearray(jp.read_bytes())
    bad = 4  # record of stroke 5
    a, b = starts[bad], starts[bad + 1]
    if damage == "bitflip":
        data[(a + b) // 2] ^= 0x10
    elif damage == "zeroed":
        data[a:b] = bytes(b - a)
    else:  # torn: only the first part of the record reached the disk, then later records follow
        del data[a + (b - a) // 3: b]
    jp.write_bytes(bytes(data))
    recs, skipped = scan_journal(bytes(data))
    assert skipped == 1
    assert [r[0]["seq"] for r in recs] == [s for s in range(1, 11) if s != bad + 1]
    lm, seq = load_workspace(root)
    assert seq == 10
    # only stroke 5 is lost (its record is bad): outside its box the labels are those after the
    # last stroke; inside, each voxel is as after stroke 10 or as before stroke 5
    header = good[bad][0]
    box = tuple(slice(lo, lo + n) for lo, n in zip(header["lo"], header["shape"], strict=True))
    outside = np.ones(SHAPE, bool)
    outside[box] = False
    assert np.array_equal(lm.array[outside], states[10][outside])
    inside = lm.array[box]
    assert np.all((inside == states[10][box]) | (inside == states[4][box]))
    assert not np.array_equal(lm.array, states[10]) or np.array_equal(states[5], states[4])


def test_garbage_and_a_torn_tail_are_skipped():
    r1 = encode_record({"seq": 1, "kind": "table"})
    r2 = encode_record({"seq": 2, "kind": "region"}, zlib.compress(b"abc"))
    r3 = encode_record({"seq": 3, "kind": "table"})
    data = b"junkMVJ1" + r1 + b"\x00" * 37 + r2 + r3[:-5]
    recs, skipped = scan_journal(data)
    assert [h["seq"] for h, _ in recs] == [1, 2]
    assert zlib.decompress(recs[1][1]) == b"abc"
    assert skipped == 3


@pytest.mark.gui
def test_brush_strokes_in_the_window_on_a_full_disk_show_a_banner_and_are_kept(tmpfs, loaded_window, qtbot, capsys):  # noqa: F811
    """The real window, offscreen: brush strokes with the mouse on a full disk; no exception
    reaches the brush tool, the annotation panel shows the banner and the status bar the
    message at once; when space returns the banner clears and the disk holds every stroke."""
    from PySide6.QtWidgets import QApplication

    from medview.ui.annotation_panel import install
    from tests.ui.conftest import drag, voxel_to_widget

    win = loaded_window
    panel = install(win)
    QApplication.processEvents()
    try:
        panel.session.workspace_base = tmpfs
        panel.new_button.click()
        s = panel.session
        assert s.active and s.workspace is not None and s.workspace.root.parent == tmpfs
        s.workspace.retry_interval = 0.2
        panel.radius_spin.setValue(3.0)
        view = win.viewer.views["axial"]
        i0, j0, k = win.state.cursor
        QApplication.processEvents()
        filler = fill(tmpfs)
        n = 6
        for t in range(n):
            a = voxel_to_widget(view, (i0 - 40 + 12 * t, j0 - 20 + 5 * t, k))
            b = voxel_to_widget(view, (i0 - 30 + 12 * t, j0 - 10 + 5 * t, k))
            drag(view, a, b)
        assert len(s.history.undo_names()) == n
        qtbot.waitUntil(lambda: panel.save_error_label.isVisible(), timeout=5000)
        text = panel.save_error_label.text()
        assert text.startswith("Autosave failed: disk full at ") and str(tmpfs) in text and "kept in memory" in text
        assert win.statusBar().currentMessage() == text
        want = s.labelmap.array.copy()
        assert want.any()
        filler.unlink()
        qtbot.waitUntil(lambda: not panel.save_error_label.isVisible(), timeout=20000)
        assert "Autosave OK again" in win.statusBar().currentMessage()
        ws = s.workspace
        qtbot.waitUntil(lambda: ws.last_snapshot_seq >= ws.seq and not ws.unsaved, timeout=20000)
        lm, _ = load_workspace(ws.root)
        painted_strokes = len(s.history.undo_names())
        same = np.array_equal(lm.array, want)
        with capsys.disabled():
            print(f"\n[window] strokes made={n} recovered={painted_strokes if same else 'MISMATCH'}")
        assert same
    finally:
        panel.shutdown()
