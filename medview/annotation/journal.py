"""Durable files of a review workspace: atomic whole-file writes and the edit journal format.

A journal is a sequence of self-delimiting, checksummed records::

    magic "MVJ1" | u32 body length | u32 crc32(body) | body
    body = u32 header length | JSON header | payload bytes

A reader checks magic, length and CRC of every record. A torn or corrupt record (a write cut
short by a full disk, a crash, a flipped bit) is skipped: the reader searches forward for the
next magic and goes on, so one bad record never hides the good records after it.

This module imports nothing else from medview (review, workspace, nifti all use it).
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from pathlib import Path
from typing import Any

MAGIC = b"MVJ1"
HEAD = struct.Struct("<4sII")  # magic, body length, crc32(body)
MAX_BODY = 1 << 31


# ---- atomic files -------------------------------------------------------------------------------
def fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one:
    temporary file in the same folder, flush, fsync, rename over the target, fsync the folder.
    A failed write (disk full, I/O error) removes its temporary file and raises ``OSError``;
    the old file is untouched."""
    write_file_atomically(path, [data])


def write_file_atomically(path: Path, chunks) -> None:
    """Like ``atomic_write_bytes`` for an iterable of byte chunks (streamed, never joined)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1).encode("utf-8"))


# ---- journal records ----------------------------------------------------------------------------
def encode_record(header: dict[str, Any], payload: bytes = b"") -> bytes:
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    body = struct.pack("<I", len(h)) + h + payload
    return HEAD.pack(MAGIC, len(body), zlib.crc32(body)) + body


def _record_at(data: bytes, pos: int) -> tuple[dict[str, Any], bytes, int] | None:
    """The record starting at ``pos`` and its total size, or None when it is not a good one."""
    if pos + HEAD.size > len(data):
        return None
    magic, n, crc = HEAD.unpack_from(data, pos)
    if magic != MAGIC or n < 4 or n > MAX_BODY or pos + HEAD.size + n > len(data):
        return None
    body = data[pos + HEAD.size: pos + HEAD.size + n]
    if zlib.crc32(body) != crc:
        return None
    (hl,) = struct.unpack_from("<I", body, 0)
    if 4 + hl > n:
        return None
    try:
        header = json.loads(body[4: 4 + hl].decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(header, dict):
        return None
    return header, bytes(body[4 + hl:]), HEAD.size + n


def scan_journal(data: bytes) -> tuple[list[tuple[dict[str, Any], bytes]], int]:
    """(good records in file order, number of bad stretches skipped)."""
    out: list[tuple[dict[str, Any], bytes]] = []
    skipped = 0
    pos = 0
    while pos + HEAD.size <= len(data):
        rec = _record_at(data, pos)
        if rec is not None:
            out.append((rec[0], rec[1]))
            pos += rec[2]
            continue
        skipped += 1  # torn / corrupt: resynchronise on the next magic that starts a good record
        nxt = data.find(MAGIC, pos + 1)
        while nxt != -1 and _record_at(data, nxt) is None:
            nxt = data.find(MAGIC, nxt + 1)
        if nxt == -1:
            break
        pos = nxt
    return out, skipped


def read_journal(path: Path) -> list[tuple[dict[str, Any], bytes]]:
    """Good records of a journal file, in file order; torn or corrupt records are skipped."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return []
    return scan_journal(data)[0]
