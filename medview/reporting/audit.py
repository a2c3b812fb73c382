"""Audit trail: an append-only JSON-lines log of who opened, ran a model on, edited and exported
which study.

One file in the user data folder (``audit/audit.jsonl``). Every entry is one line written with a
single ``os.write`` on a file opened ``O_APPEND`` (entries from several processes never
interleave and nothing already written is touched). Each entry carries the SHA-256 of the line
before it (``prev``), so a rewritten or deleted line breaks the chain and ``verify_chain`` names
the first one that does not fit.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

ACTIONS = ("open", "run_model", "edit", "save", "export", "import", "deidentify")
_lock = threading.Lock()
_GENESIS = "0" * 64


def audit_log_path() -> Path:
    from medview.config import user_data_dir

    return user_data_dir() / "audit" / "audit.jsonl"


def current_user() -> str:
    """The user name from the settings (reviewer name) or the OS login."""
    from medview.annotation.labelmap import reviewer_name

    return reviewer_name()


def study_of(meta: dict[str, Any] | None) -> dict[str, str]:
    """The study/series identifiers an entry names, from a Volume.meta or label-map reference."""
    meta = meta or {}
    keys = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality")
    out = {k: str(meta[k]) for k in keys if meta.get(k)}
    if meta.get("source_path"):
        out["path"] = str(meta["source_path"])
    return out


def _last_line_hash(path: Path) -> str:
    if not path.is_file() or path.stat().st_size == 0:
        return _GENESIS
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        block = min(size, 65536)
        f.seek(size - block)
        tail = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return hashlib.sha256(tail).hexdigest()


def record(action: str, study: dict[str, Any] | None = None, detail: dict[str, Any] | None = None,
           path: Path | None = None) -> dict[str, Any] | None:
    """Append one entry; returns it. Never raises into the caller: an audit write that fails
    (read-only disk) is logged and the user's work goes on."""
    import logging

    from medview.annotation.labelmap import now_iso

    path = Path(path) if path is not None else audit_log_path()
    entry: dict[str, Any] = {"time": now_iso(), "user": current_user(), "host": socket.gethostname(),
                             "action": str(action), "study": study_of(study) if study is not None else {},
                             "detail": dict(detail or {})}
    try:
        with _lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            entry["prev"] = _last_line_hash(path)
            line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode("utf-8")
            fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
    except OSError as exc:
        logging.getLogger("medview.audit").error("audit entry not written to %s: %s (%s)", path, exc, entry)
        return None
    return entry


def read_log(path: Path | None = None) -> list[dict[str, Any]]:
    """All entries, oldest first (a line that is not JSON is returned as {"corrupt": line})."""
    path = Path(path) if path is not None else audit_log_path()
    if not path.is_file():
        return []
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        try:
            out.append(json.loads(raw))
        except ValueError:
            out.append({"corrupt": raw})
    return out


def verify_chain(path: Path | None = None) -> int | None:
    """None when every line's ``prev`` is the hash of the line before; else the 1-based number
    of the first line that does not fit (a line was changed, removed or inserted before it)."""
    path = Path(path) if path is not None else audit_log_path()
    if not path.is_file():
        return None
    prev = _GENESIS
    for n, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            return n
        if entry.get("prev") != prev:
            return n
        prev = hashlib.sha256(raw).hexdigest()
    return None


def record_model_run(meta: dict[str, Any] | None, pred: Any, cached: bool = False) -> None:
    """The one audit entry of a model run (medview.inference.pipeline.run_model: app, CLI, batch)."""
    record("run_model", meta, {"model": getattr(pred, "model_id", ""), "version": getattr(pred, "model_version", ""),
                               "sha256": getattr(pred, "model_sha256", ""), "cached": bool(cached),
                               "top_class": getattr(pred, "top_class", None) or ""})
