"""Review-session workspace: never lose an edit.

A workspace is a folder holding one label map's session::

    workspace.json      geometry, image reference, creation time (written once)
    snapshot.json       {"seq", "chunks", labels, provenance}: the last snapshot (atomic)
    slab-<i>-<seq>.z    zlib-compressed slabs of 8 slices of that snapshot (atomic; see snapshot.py)
    journal.log         every committed edit since (stroke, fill, undo, redo, label table change),
                        appended and flushed to the OS at the end of each stroke
    journal-<n>-<t>.old journals rotated out while a snapshot was being written
    original.z          the AI labels an edit started from (for the edit summary), if any
    reviews.json        classification reviews of this image
    session.lock        {"pid", "host"}: present while a session is open; a stale one means a crash

The journal makes a crash lose at most the stroke being drawn: a record is written with one
``os.write`` when the stroke ends (a SIGKILL cannot lose data already handed to the OS; the
background thread also fsyncs it). The background autosave thread (no copy of the label map
of its own) rewrites the slabs the records touched, each copied briefly from the live label
map between strokes (snapshot.py), with temporary file + flush + fsync + rename, then drops
the journals the snapshot covers. The first snapshot of a new session is written by that
thread too, so opening a session never blocks its caller. Recovery = last snapshot + replay
of every journal record newer than it (a torn or corrupt record fails its CRC and is skipped;
the records after it are still read, see journal.py). A failed write never loses an edit: see
``Workspace``.
"""

from __future__ import annotations

import atexit
import errno
import hashlib
import json
import os
import queue
import socket
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from medview.annotation import patch
from medview.annotation.history import EditHistory, raw_bytes
from medview.annotation.journal import (  # noqa: F401  (re-exported: the workspace's file API)
    atomic_write_bytes,
    atomic_write_json,
    encode_record,
    fsync_dir,
    read_journal,
)
from medview.annotation.labelmap import Label, LabelMap, Provenance, now_iso, volume_from_geometry
from medview.annotation.ops import Change
from medview.annotation.review import load_reviews_json, save_reviews_json
from medview.annotation.snapshot import (
    Restart,
    all_zero,
    read_snapshot,
    slabs_of_box,
    write_empty_snapshot,
    write_snapshot,
)

SCHEMA = "medview-workspace/1"
_fsync_dir = fsync_dir
_encode = encode_record

_REASONS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EIO: "I/O error",
            errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EROFS: "read-only disk",
            errno.ENOENT: "folder missing"}


def failure_message(exc: OSError, root: Path) -> str:
    """The one line the user sees when autosave cannot write."""
    reason = _REASONS.get(exc.errno or -1) or (exc.strerror or str(exc))
    return f"Autosave failed: {reason} at {root} \u2014 your edits are kept in memory; retrying"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def workspaces_dir() -> Path:
    from medview.config import user_data_dir

    return user_data_dir() / "workspaces"


def workspace_key(reference: dict[str, Any]) -> str:
    """A folder name for an image: its SeriesInstanceUID, else a hash of its path."""
    uid = str(reference.get("SeriesInstanceUID") or "").strip()
    if uid:
        return "".join(c if c.isalnum() or c in ".-_" else "_" for c in uid)[:120]
    src = str(reference.get("source_path") or "unnamed")
    return "img-" + hashlib.sha1(src.encode("utf-8")).hexdigest()[:16]


class Workspace:
    """An open review session on one label map. Create with ``create`` or ``resume``.

    Write failures (disk full, I/O error, permission) never raise into the editing code and
    never lose an edit: the record stays in memory (``unsaved``), ``save_error`` says why, every
    ``status_listeners`` callback gets the message (or None when it clears; called from the
    editing thread or the autosave thread), and the autosave thread retries every
    ``retry_interval`` seconds until the journal and a snapshot are written again."""

    def __init__(self, root: str | Path, autosave_delay: float = 2.0, max_interval: float = 30.0,
                 retry_interval: float = 1.0) -> None:
        self.root = Path(root)
        self.autosave_delay = float(autosave_delay)
        self.max_interval = float(max_interval)
        self.retry_interval = float(retry_interval)
        self.labelmap: LabelMap | None = None
        self.history: EditHistory | None = None
        self.seq = 0
        self._jlock = threading.Lock()
        self._jfd: int | None = None
        self._pending: list[bytes] = []  # journal records not yet on disk (a write failed)
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._force = threading.Event()
        self._stop_now = threading.Event()
        self._ready = threading.Event()  # the session's files exist (written by the autosave thread)
        self._ready.set()
        self.start_error: OSError | None = None
        self._idle.set()
        self.last_snapshot_seq = 0
        self.save_error: str | None = None
        self.status_listeners: list[Callable[[str | None], None]] = []
        self.snapshots_written = 0
        self.write_failures = 0

    @property
    def last_error(self) -> str | None:
        return self.save_error

    @property
    def unsaved(self) -> bool:
        """True while some edit is only in memory (journal record or snapshot not written)."""
        return bool(self._pending) or self.save_error is not None

    def _report(self, exc: OSError | None) -> None:
        msg = None if exc is None else failure_message(exc, self.root)
        if exc is not None:
            self.write_failures += 1
        if msg == self.save_error:
            return
        self.save_error = msg
        for cb in list(self.status_listeners):
            try:
                cb(msg)
            except Exception:  # a listener's bug must not stop autosave
                pass

    # ---- opening --------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, labelmap: LabelMap, history: EditHistory | None = None,
               original: np.ndarray | None = None, **kw: Any) -> Workspace:
        """Start a new session in ``root`` (an existing session there is replaced)."""
        ws = cls(root, **kw)
        header = labelmap.header()
        info = {
            "schema": SCHEMA,
            "created": now_iso(),
            "geometry": header["geometry"],
            "reference": header["reference"],
            "source_files": list(labelmap.reference.get("source_files", [])),
            "dtype": labelmap.array.dtype.str,
        }
        # the folder, workspace.json and snapshot 0 are written by the autosave thread (fsyncs
        # and a pass over the label map never block the caller); journal records wait for them
        ws._open(labelmap, history, seq=0, original=original, new_info=info)
        return ws

    def _write_new(self, info: dict[str, Any]) -> None:
        """A new session's files (autosave thread): old ones removed, workspace.json, snapshot 0
        (an empty label map needs no slab file; AI labels are written slab by slab, no
        whole-array copy; slabs are copied between strokes, see snapshot.py)."""
        _wait_for_close(self.root)  # the previous session on this image may still be closing
        self.root.mkdir(parents=True, exist_ok=True)
        for p in list(self.root.glob("journal*")) + list(self.root.glob("snapshot*")):
            p.unlink(missing_ok=True)
        atomic_write_json(self.root / "workspace.json", info)
        (self.root / "original.z").unlink(missing_ok=True)
        lm = self.labelmap
        assert lm is not None
        if self.seq == 0 and all_zero(lm.array):  # slab by slab: never one long hold of the GIL
            write_empty_snapshot(self.root, lm.shape, lm.array.dtype.str, self._table(lm))
        else:
            write_snapshot(self.root, lambda: lm.array, range(lm.shape[0]), 0, self._table(lm), busy=self._busy)

    @classmethod
    def resume(cls, root: str | Path, history: EditHistory | None = None, **kw: Any) -> Workspace:
        """Reopen a session (after a crash: restore it): snapshot + journal replay."""
        ws = cls(root, **kw)
        _wait_for_close(ws.root)
        lm, seq = load_workspace(ws.root)
        # journal records replayed on top of the snapshot touched slabs the snapshot lacks: the
        # autosave thread writes a whole new snapshot (slab by slab) first
        ws._open(lm, history, seq=seq, full=True)
        return ws

    @classmethod
    def for_labelmap(cls, labelmap: LabelMap, base: Path | None = None, **kw: Any) -> Workspace:
        return cls.create((base or workspaces_dir()) / workspace_key(labelmap.reference), labelmap, **kw)

    def _open(self, labelmap: LabelMap, history: EditHistory | None, seq: int, full: bool = False,
              original: np.ndarray | None = None, new_info: dict[str, Any] | None = None) -> None:
        self.labelmap = labelmap
        self.history = history or EditHistory(labelmap)
        if self.history.labelmap is not labelmap:
            raise ValueError("history belongs to another label map")
        self.seq = seq
        self.last_snapshot_seq = seq
        self.history.listeners.append(self._on_edit)
        labelmap.table_listeners.append(self._on_table)
        self._stop.clear()
        if full:
            self.last_snapshot_seq = -1  # none yet: flush() waits for the first one
        if new_info is None:  # a restored session: its folder exists, the lock says it is open again
            self._write_lock_and_open_journal()
        else:
            self._ready.clear()
        self._thread = threading.Thread(target=self._autosave_loop, args=(full, original, new_info),
                                        name="medview-autosave", daemon=True)
        self._thread.start()

    def _write_lock_and_open_journal(self) -> None:
        atomic_write_json(self.root / "session.lock", {"pid": os.getpid(), "host": socket.gethostname(),
                                                       "opened": now_iso()})
        with self._jlock:
            self._jfd = os.open(str(self.root / "journal.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _start_files(self, new_info: dict[str, Any] | None) -> None:
        """Autosave thread, first: a new session's files, the lock, the open journal; then the
        journal records that arrived meanwhile are written."""
        if new_info is None:
            return
        try:
            self._write_new(new_info)
            self._write_lock_and_open_journal()
        except OSError as exc:  # disk full / no folder: edits stay in memory, retried by the loop
            self.start_error = exc
            self._report(exc)
        finally:
            self._ready.set()
        if self.start_error is None:
            self._retry_journal()

    # ---- recording (called on the editing thread) ------------------------------------------
    @staticmethod
    def _table(lm: LabelMap) -> dict[str, Any]:
        h = lm.header()
        return {"labels": h["labels"], "provenance": h["provenance"]}

    def _write_record_locked(self, rec: bytes) -> None:
        """Append one whole record (caller holds _jlock). A short or failed write is cut back
        off the file (when the file system lets us) and raises OSError."""
        if self._jfd is None:
            self._jfd = os.open(str(self.root / "journal.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        start = os.lseek(self._jfd, 0, os.SEEK_END)
        view = memoryview(rec)
        try:
            while view:
                n = os.write(self._jfd, view)
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
        except OSError:
            try:
                os.ftruncate(self._jfd, start)  # no torn record left behind (the reader skips one anyway)
            except OSError:
                pass
            raise

    def _flush_pending_locked(self) -> None:
        while self._pending:
            self._write_record_locked(self._pending[0])
            self._pending.pop(0)

    def _append(self, header: dict[str, Any], payload: bytes = b"") -> None:
        rec = encode_record(header, payload)
        failed: OSError | None = None
        if not self._ready.is_set():  # only an edit in the first milliseconds of a session waits
            self._ready.wait(timeout=30.0)
        with self._jlock:
            if self._stop.is_set() and self._thread is None:
                return
            self._pending.append(rec)  # records go to disk in order; a failed one waits with the rest
            try:
                if self.start_error is None:  # else the session's files come first (autosave retries)
                    self._flush_pending_locked()
            except OSError as exc:
                failed = exc
        if failed is not None:  # never into the brush tool: kept in memory, shown, retried
            self._report(failed)

    def _on_edit(self, kind: str, change: Change) -> None:
        assert self.labelmap is not None
        self.seq += 1
        new = np.ascontiguousarray(change.new)
        shape = change.shape
        # the autosave thread hears of the edit first: a journal failure never drops it from snapshots
        self._idle.clear()
        table = self._table(self.labelmap)  # once: the header walks every label's provenance
        self._queue.put(("region", self.seq, patch.z_spans(change.lo, shape, change.pieces), None, table))
        header = {"seq": self.seq, "kind": "region", "op": kind, "name": change.name,
                  "lo": list(change.lo), "shape": list(shape), "dtype": new.dtype.str, "table": table}
        if change.pieces is not None:
            header["pieces"] = patch.pieces_to_json(change.pieces)
        self._append(header, getattr(change, "new_z", None) or zlib.compress(raw_bytes(new), 1))

    def _on_table(self, kind: str, label: Label | None) -> None:
        assert self.labelmap is not None
        self.seq += 1
        table = self._table(self.labelmap)
        self._idle.clear()
        self._queue.put(("table", self.seq, None, self.labelmap.array.dtype.str, table))
        self._append({"seq": self.seq, "kind": "table", "table": table, "dtype": self.labelmap.array.dtype.str})

    def note(self) -> None:
        """Journal the current label table and provenance (e.g. after provenance changes)."""
        self._on_table("note", None)

    # ---- background autosave --------------------------------------------------------------
    def _retry_journal(self) -> bool:
        """Write journal records kept in memory; True when none is left."""
        with self._jlock:
            if not self._pending:
                return True
            if self.start_error is not None:
                return False
            try:
                self._flush_pending_locked()
            except OSError as exc:
                err = exc
            else:
                return True
        self._report(err)
        return False

    def _busy(self) -> int:
        h = self.history
        if h is None:
            return 0
        return -1 if h.in_stroke else h.strokes_begun

    def _autosave_loop(self, full: bool, original: np.ndarray | None, new_info: dict[str, Any] | None) -> None:
        assert self.labelmap is not None
        self._start_files(new_info)
        if self.start_error is not None:
            full = True  # the retry writes everything once the disk is back
        table: dict[str, Any] | None = self._table(self.labelmap) if full else None
        applied = self.seq
        dirty = full
        slabs: set[int] = set()
        first_dirty = time.monotonic()
        next_retry = 0.0
        if original is not None:
            try:
                atomic_write_bytes(self.root / "original.z",
                                   zlib.compress(memoryview(np.ascontiguousarray(original)).cast("B"), 1))
            except OSError as exc:
                self._report(exc)
        while True:
            failing = self.save_error is not None
            wait = self.retry_interval if failing else (self.autosave_delay if dirty else 0.25)
            if full and dirty and not failing:
                wait = 0.0
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                item = None
            if item is not None and item[0] == "wake":  # flush() asks for a snapshot now
                item = None
            if item is not None:
                kind, seq, spans, data, tab = item
                if kind == "region":
                    for z0, nz in spans:
                        slabs.update(slabs_of_box(z0, nz))
                table, applied = tab, seq
                if not dirty:
                    first_dirty = time.monotonic()
                dirty = True
                with self._jlock:  # durable on disk too (SIGKILL does not need it; power loss does)
                    if self._jfd is not None:
                        try:
                            os.fsync(self._jfd)
                        except OSError:
                            pass
            now = time.monotonic()
            if self.save_error is not None and self._queue.empty() and now >= next_retry:
                # retry: first the journal records kept in memory, then a snapshot of everything
                next_retry = now + self.retry_interval
                if self.start_error is not None:  # the session's files first
                    self.start_error = None
                    self._start_files(new_info)
                if self._retry_journal() and not dirty and table is None:
                    self._report(None)
                dirty = dirty or table is not None
                if dirty:
                    self._force.set()
            due = dirty and (item is None or self._force.is_set() or full
                             or time.monotonic() - first_dirty >= self.max_interval)
            if due and self._queue.empty() and table is not None:
                try:
                    self._snapshot(applied, table, None if full else set(slabs))
                except Restart:  # dtype changed under us: every slab again
                    full = True
                except OSError as exc:  # disk full, folder gone: kept in memory, shown, retried
                    self._report(exc)
                    next_retry = time.monotonic() + self.retry_interval
                else:
                    dirty = full = False
                    slabs.clear()
                    if self._retry_journal():
                        self._report(None)
                self._force.clear()
            if not dirty and self._queue.empty():
                self._idle.set()
                if self._stop.is_set():
                    return
            elif self._stop_now.is_set():  # close() gave up (disk full): what is on disk stays recoverable
                self._idle.set()
                return

    def _snapshot(self, seq: int, table: dict[str, Any], slabs: set[int] | None) -> None:
        # rotate the journal so the file we will delete holds only records the snapshot covers
        with self._jlock:
            jp = self.root / "journal.log"
            if self._jfd is not None and jp.exists() and jp.stat().st_size > 0:
                try:
                    os.fsync(self._jfd)
                except OSError:
                    pass
                os.close(self._jfd)
                self._jfd = None
                os.replace(jp, self.root / f"journal-{self.seq:012d}-{time.time_ns()}.old")
                fsync_dir(self.root)
                self._jfd = os.open(str(jp), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        assert self.labelmap is not None
        lm = self.labelmap
        write_snapshot(self.root, lambda: lm.array, range(lm.shape[0]) if slabs is None else slabs,
                       seq, table, busy=self._busy)
        # drop rotated journals whose records are all covered by this snapshot
        for old in self.root.glob("journal-*.old"):
            recs = read_journal(old)
            if all(h.get("seq", 0) <= seq for h, _ in recs):
                old.unlink(missing_ok=True)
        self.last_snapshot_seq = seq
        self.snapshots_written += 1

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the background thread has written a snapshot of everything so far
        (False when it could not within ``timeout``, e.g. while the disk is full)."""
        deadline = time.monotonic() + timeout
        self._ready.wait(timeout)  # a new session's files first
        self._force.set()
        self._queue.put(("wake", 0, None, None, None))  # the thread may sit in a long queue wait
        while time.monotonic() < deadline:
            if (self.last_snapshot_seq >= self.seq and self._queue.empty() and self._idle.is_set()
                    and not self.unsaved):
                return True
            if self.last_snapshot_seq < self.seq and self._idle.is_set() and self._queue.empty():
                # nothing queued but the snapshot is older than the last record: ask for one
                self._idle.clear()
                assert self.labelmap is not None
                self._queue.put(("table", self.seq, None, self.labelmap.array.dtype.str, self._table(self.labelmap)))
            self._force.set()
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 30.0, wait: bool = True,
              on_closed: Callable[[bool], None] | None = None) -> bool:
        """End the session: final snapshot, journal removed, lock released. Returns False when
        the last state could not be written within ``timeout`` (disk full): then the lock and
        journals stay, so the next start offers to restore what reached the disk.

        ``wait=False`` (the GUI): the stroke is closed here and the rest (the final snapshot)
        happens on a closing thread; ``on_closed(saved)`` is called from it, a new session on
        the same folder waits for it, and interpreter exit joins it. Returns True at once."""
        if self._thread is None:
            if on_closed is not None:
                on_closed(True)
            return True
        if self.history is not None and self.history.in_stroke:
            self.history.end()
        if not wait:
            def finish() -> None:
                try:
                    saved = self._close(timeout)
                finally:
                    with _CLOSING_LOCK:
                        if _CLOSING.get(str(self.root)) is threading.current_thread():
                            del _CLOSING[str(self.root)]
                if on_closed is not None:
                    on_closed(saved)

            t = threading.Thread(target=finish, name="medview-workspace-close", daemon=True)
            with _CLOSING_LOCK:
                _CLOSING[str(self.root)] = t
            t.start()
            return True
        return self._close(timeout)

    def _close(self, timeout: float) -> bool:
        saved = self.flush(timeout=timeout)
        self._stop.set()
        if not saved:
            self._stop_now.set()
        self._queue.put(("wake", 0, None, None, None))  # do not wait out the thread's idle poll
        self._thread.join(timeout=30)
        self._thread = None
        with self._jlock:
            if self._jfd is not None:
                os.close(self._jfd)
                self._jfd = None
        if saved and self.last_snapshot_seq >= self.seq:
            for p in self.root.glob("journal*"):
                p.unlink(missing_ok=True)
            (self.root / "session.lock").unlink(missing_ok=True)
        if self.history is not None and self._on_edit in self.history.listeners:
            self.history.listeners.remove(self._on_edit)
        if self.labelmap is not None and self._on_table in self.labelmap.table_listeners:
            self.labelmap.table_listeners.remove(self._on_table)
        return saved

    # ---- reviews ------------------------------------------------------------------------------
    def save_reviews(self, reviews: list) -> None:
        save_reviews_json(reviews, self.root / "reviews.json")

    def load_reviews(self) -> list:
        p = self.root / "reviews.json"
        return load_reviews_json(p) if p.is_file() else []

    def original(self) -> np.ndarray | None:
        return load_original(self.root)


# ---- sessions still closing (Workspace.close(wait=False)) ---------------------------------------
_CLOSING: dict[str, threading.Thread] = {}
_CLOSING_LOCK = threading.Lock()


def _wait_for_close(root: Path, timeout: float = 60.0) -> None:
    with _CLOSING_LOCK:
        t = _CLOSING.get(str(root))
    if t is not None and t is not threading.current_thread():
        t.join(timeout)


def is_closing(root: str | Path) -> bool:
    """True while a session in ``root`` is writing its final snapshot (it will be a saved one)."""
    with _CLOSING_LOCK:
        t = _CLOSING.get(str(Path(root)))
    return t is not None and t.is_alive()


def wait_closed(timeout: float = 30.0) -> None:
    """Wait for every session still closing (``close(wait=False)``) to finish its files."""
    with _CLOSING_LOCK:
        threads = list(_CLOSING.values())
    for t in threads:
        t.join(timeout)


atexit.register(wait_closed)  # a quit right after closing a session still writes its last snapshot


# ---- loading / recovery -------------------------------------------------------------------------
def load_original(root: Path) -> np.ndarray | None:
    p = Path(root) / "original.z"
    if not p.is_file():
        return None
    info = json.loads((Path(root) / "workspace.json").read_text(encoding="utf-8"))
    shape = tuple(info["geometry"]["shape"])
    raw = zlib.decompress(p.read_bytes())
    dtype = np.dtype(info.get("dtype", "|u1"))
    if len(raw) != int(np.prod(shape)) * dtype.itemsize:
        dtype = np.dtype(np.uint16)
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def load_workspace(root: str | Path) -> tuple[LabelMap, int]:
    """The label map as of the last journalled edit: last snapshot + newer journal records.
    Returns (labelmap, last sequence number)."""
    root = Path(root)
    info = json.loads((root / "workspace.json").read_text(encoding="utf-8"))
    arr, snap = read_snapshot(root)
    table = {"labels": snap.get("labels", []), "provenance": snap.get("provenance", {})}
    seq0 = int(snap["seq"])
    records: list[tuple[dict[str, Any], bytes]] = []
    for jp in sorted(root.glob("journal-*.old")) + [root / "journal.log"]:
        records.extend(read_journal(jp))
    records.sort(key=lambda r: r[0].get("seq", 0))
    last = seq0
    for header, payload in records:
        s = int(header.get("seq", 0))
        if s <= last:
            continue
        if header["kind"] == "region":
            dt = np.dtype(header["dtype"])
            if dt != arr.dtype:
                arr = arr.astype(dt)
            pieces = patch.pieces_from_json(header.get("pieces"))
            vals = np.frombuffer(zlib.decompress(payload), dtype=dt)
            patch.write(arr, header["lo"], vals if pieces is not None else vals.reshape(header["shape"]), pieces)
        elif header["kind"] == "table" and np.dtype(header.get("dtype", arr.dtype.str)) != arr.dtype:
            arr = arr.astype(np.dtype(header["dtype"]))
        table = header.get("table", table)
        last = s
    vol = volume_from_geometry(info["geometry"], arr)
    vol.meta.update({k: v for k, v in info.get("reference", {}).items() if k in (
        "Modality", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID", "PatientID", "source_path")})
    reference = dict(info.get("reference", {}))
    if info.get("source_files"):
        reference["source_files"] = list(info["source_files"])
    lm = LabelMap(vol, [Label.from_dict(d) for d in table.get("labels", [])],
                  Provenance.from_dict(table.get("provenance", {})), reference)
    return lm, last


def needs_recovery(root: str | Path) -> bool:
    """True when a session in ``root`` ended without closing (its owner process is gone)."""
    root = Path(root)
    lock = root / "session.lock"
    if not lock.is_file() or not (root / "snapshot.json").is_file():
        return False
    try:
        info = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    if info.get("host") != socket.gethostname():
        return True
    pid = int(info.get("pid", -1))
    return pid != os.getpid() and not _pid_alive(pid)


def find_recoverable(base: str | Path | None = None) -> list[Path]:
    """Workspaces (under ``base``, default the user's workspace folder) left by a crash."""
    base = Path(base) if base is not None else workspaces_dir()
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and needs_recovery(p))


def discard(root: str | Path) -> None:
    """Forget a crashed session's unsaved state (the user declined to restore it)."""
    (Path(root) / "session.lock").unlink(missing_ok=True)
