import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medview.annotation import EditHistory, LabelMap, paint
from medview.annotation.workspace import (
    Workspace,
    atomic_write_bytes,
    discard,
    find_recoverable,
    load_workspace,
    needs_recovery,
    read_journal,
)
from medview.io.volume import Volume

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from edit_session_script import expected_states  # noqa: E402


def _start(root: Path, n: int) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent.parent), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, str(HERE / "edit_session_script.py"), str(root), str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after,delay", [(12, 0.0), (25, 0.011), (33, 0.004)])
def test_sigkill_mid_session_loses_at_most_the_last_stroke(tmp_path, kill_after, delay):
    n_total = 200  # far more than it can do before the kill, even on a loaded machine
    states = expected_states(n_total)
    root = tmp_path / "ws"
    proc = _start(root, n_total)
    last_done = 0
    try:
        for line in proc.stdout:
            if line.startswith("done"):
                last_done = int(line.split()[1])
                if last_done >= kill_after:
                    time.sleep(delay)
                    os.kill(proc.pid, signal.SIGKILL)
                    break
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, err
    for line in rest.splitlines():  # lines printed before the kill that we had not read yet
        if line.startswith("done"):
            last_done = int(line.split()[1])
    assert last_done < n_total, "the session finished before it was killed"

    # the next start sees a crashed session and offers to restore it
    assert needs_recovery(root)
    assert find_recoverable(tmp_path) == [root]
    lm, _ = load_workspace(root)
    ok = [n for n in (last_done, last_done + 1) if np.array_equal(lm.array, states[n])]
    assert ok, f"recovered labels match neither stroke {last_done} nor {last_done + 1}"
    assert lm.volume.spacing == (0.8, 0.8, 3.0) and lm.volume.origin == (1.0, 2.0, 3.0)
    assert "third" in [lab.name for lab in lm.labels.values()]
    assert lm.provenance.reviewer == "tester"

    # restoring re-opens the session and keeps working from there
    ws = Workspace.resume(root, autosave_delay=0.05)
    assert not needs_recovery(root)
    ws.history.push(paint(ws.labelmap, (1, 50, 50), radius_mm=5, value=1))
    ws.history.push(paint(ws.labelmap, (2, 50, 50), radius_mm=5, value=1))
    want = ws.labelmap.array.copy()
    ws.close()
    assert not (root / "session.lock").exists()
    lm2, _ = load_workspace(root)
    assert np.array_equal(lm2.array, want)


def test_clean_session_round_trip_and_journal(tmp_path):
    img = Volume(np.zeros((5, 40, 50), np.int16), spacing=(1, 1, 2), meta={"SeriesInstanceUID": "1.2.3"})
    lm = LabelMap.empty(img)
    ws = Workspace.create(tmp_path / "w", lm, autosave_delay=10.0, max_interval=100.0)
    h = ws.history
    h.begin("Brush")
    h.add(paint(lm, (2, 10, 10), (2, 20, 30), radius_mm=3, value=1))
    h.end()
    lm.add_label("lesion", (1, 2, 3))
    h.push(paint(lm, (3, 20, 20), radius_mm=4, value=2))
    h.undo()
    # no snapshot yet (long delay): everything is in the journal
    recs = read_journal(tmp_path / "w" / "journal.log")
    assert [r[0]["kind"] for r in recs] == ["region", "table", "region", "region"]
    assert [r[0]["op"] for r in recs if r[0]["kind"] == "region"] == ["do", "do", "undo"]
    lm2, seq = load_workspace(tmp_path / "w")
    assert seq == 4 and np.array_equal(lm2.array, lm.array)
    assert lm2.labels[2].name == "lesion" and lm2.provenance.undos == 1
    # a torn record at the end (crash in the middle of a write) is ignored
    with open(tmp_path / "w" / "journal.log", "ab") as f:
        f.write(b"MVJ1\x50\x00\x00\x00garbage")
    lm3, _ = load_workspace(tmp_path / "w")
    assert np.array_equal(lm3.array, lm.array)
    assert ws.flush(10)
    ws.close()
    assert not list((tmp_path / "w").glob("journal*"))
    assert not needs_recovery(tmp_path / "w")
    lm4, _ = load_workspace(tmp_path / "w")
    assert np.array_equal(lm4.array, lm.array)


def test_stale_lock_is_recoverable_and_discard(tmp_path):
    img = Volume(np.zeros((2, 8, 8), np.int16))
    lm = LabelMap.empty(img)
    ws = Workspace.create(tmp_path / "a", lm)
    assert not needs_recovery(tmp_path / "a")  # our own live session
    ws.close()
    atomic_write_bytes(tmp_path / "a" / "session.lock", b'{"pid": 999999999, "host": "%s"}'
                       % os.uname().nodename.encode())
    assert find_recoverable(tmp_path) == [tmp_path / "a"]
    discard(tmp_path / "a")
    assert find_recoverable(tmp_path) == []


def test_history_listener_gets_undo_regions():
    img = Volume(np.zeros((3, 30, 30), np.int16))
    lm = LabelMap.empty(img)
    h = EditHistory(lm)
    seen = []
    h.listeners.append(lambda kind, ch: seen.append((kind, ch.lo, ch.hi)))
    h.push(paint(lm, (1, 10, 10), radius_mm=2, value=1))
    h.undo()
    h.redo()
    assert [s[0] for s in seen] == ["do", "undo", "redo"]
    assert seen[0][1:] == seen[1][1:] == seen[2][1:]
