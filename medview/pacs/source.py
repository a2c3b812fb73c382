"""The StudySource interface, source settings, and turning a name or address into a source.

Sources live in ``<user config>/pacs_sources.json``::

    {"sources": [{"name": "orthanc", "kind": "dicomweb", "url": "http://127.0.0.1:8042/dicom-web",
                  "auth": "basic", "username": "u", "password": "p", "verify_tls": true},
                 {"name": "pacs", "kind": "dimse", "host": "10.0.0.5", "port": 104,
                  "called_aet": "PACS", "calling_aet": "MEDVIEW"}]}

Credentials stay in that file only: ``SourceConfig.describe()`` (used in logs, errors and
workspaces) never contains them.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Protocol
from urllib.parse import urlsplit

from medview.pacs.cache import DicomCache
from medview.pacs.model import PacsError, SeriesResult, StudyQuery, StudyResult
from medview.progress import CancelledFn, ProgressFn, check_cancelled, no_progress

DEFAULT_AET = "MEDVIEW"


@dataclass
class SourceConfig:
    name: str
    kind: str  # "folder", "dicomweb" or "dimse"
    url: str = ""  # DICOMweb root
    path: str = ""  # folder
    host: str = ""
    port: int = 104
    called_aet: str = "ANY-SCP"
    calling_aet: str = DEFAULT_AET
    retrieve: str = "get"  # DIMSE: "get" (C-GET) or "move" (C-MOVE to our storage SCP)
    move_port: int = 0  # our storage SCP port for C-MOVE (0: a free one)
    auth: str = "none"  # none / basic / bearer
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    verify_tls: bool = True
    ca_bundle: str = ""
    timeout: float = 20.0

    def describe(self) -> str:
        """Name and address without any credential (safe for logs and workspaces)."""
        if self.kind == "dicomweb":
            parts = urlsplit(self.url)
            netloc = parts.hostname or ""
            if parts.port:
                netloc += f":{parts.port}"
            return f"{self.name} ({parts.scheme}://{netloc}{parts.path})"
        if self.kind == "dimse":
            return f"{self.name} (dicom://{self.called_aet}@{self.host}:{self.port})"
        return f"{self.name} ({self.path})"

    def public_dict(self) -> dict:
        d = asdict(self)
        for key in ("password", "token", "username"):
            d.pop(key, None)
        return d

    def warnings(self) -> list[str]:
        """Plain HTTP to a host that is not this machine sends images (and auth) in clear."""
        out = []
        if self.kind == "dicomweb":
            parts = urlsplit(self.url)
            if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
                out.append(f"{self.describe()}: HTTP without TLS to a non-local host; "
                           "images and credentials travel unencrypted")
            if parts.scheme == "https" and not self.verify_tls:
                out.append(f"{self.describe()}: TLS certificate verification is off")
        return out


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Background:
    """Run ``fn`` on a thread; ``join()`` re-raises what it raised there."""

    def __init__(self, fn: Callable[[], None]):
        self._error: Optional[BaseException] = None

        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the joining thread
                self._error = exc

        self._thread = threading.Thread(target=run, name="pacs-stream", daemon=True)
        self._thread.start()

    def join(self, quiet: bool = False) -> None:
        self._thread.join()
        if self._error is not None and not quiet:
            raise self._error


class InstanceSink(Protocol):
    def __call__(self, sop: str, data: Optional[bytes] = None, dataset=None) -> None: ...


class StudySource(ABC):
    """Find studies, list series, retrieve a series into the cache, store files back."""

    config: SourceConfig

    @property
    def name(self) -> str:
        return self.config.describe()

    @abstractmethod
    def echo(self) -> None:
        """Raise PacsError when the source cannot be reached or refuses us."""

    @abstractmethod
    def find_studies(self, query: StudyQuery) -> list[StudyResult]: ...

    @abstractmethod
    def find_series(self, study_uid: str) -> list[SeriesResult]: ...

    @abstractmethod
    def retrieve_series(self, study_uid: str, series_uid: str, progress: Optional[ProgressFn] = None,
                        cancelled: Optional[CancelledFn] = None,
                        on_first: Optional[Callable[[Path], None]] = None) -> Path:
        """A folder holding the series' files (middle slice first; ``on_first(path)`` once it is
        on disk, so a viewer can show it while the rest arrives)."""

    @abstractmethod
    def store(self, files: list[Path], progress: Optional[ProgressFn] = None) -> int:
        """Send DICOM files (SEG, SR, images) to the source; returns how many were stored."""

    def retrieve_study(self, study_uid: str, progress: Optional[ProgressFn] = None,
                       cancelled: Optional[CancelledFn] = None,
                       on_first: Optional[Callable[[Path], None]] = None) -> list[Path]:
        """Every series of a study; returns their folders. The largest image series comes first
        (``on_first`` gets its middle slice), results (SEG, SR) last."""
        progress = progress or no_progress
        series = sorted(self.study_series(study_uid),
                        key=lambda s: (s.modality in ("SEG", "SR", "PR", "KO"), -s.n_instances))
        out = []
        for i, s in enumerate(series):
            check_cancelled(cancelled)
            base, span = i / max(len(series), 1), 1 / max(len(series), 1)

            def sub(f: float, stage: str, base=base, span=span, s=s) -> None:
                progress(base + f * span, f"{s.description or s.modality or 'series'}: {stage}")

            out.append(self.retrieve_series(study_uid, s.series_uid, sub, cancelled, on_first if i == 0 else None))
        progress(1.0, f"Retrieved {len(series)} series")
        return out

    def study_series(self, study_uid: str) -> list[SeriesResult]:
        """The series to open for a study (a cached source falls back to the cache offline)."""
        return self.find_series(study_uid)

    def medview_results(self, study_uid: str) -> list[SeriesResult]:
        """Series of the study that MedView stored there (its SEG / SR: Manufacturer or
        SeriesDescription says MedView)."""
        return [s for s in self.find_series(study_uid) if s.is_medview_result]

    def fail(self, reason: str) -> PacsError:
        return PacsError(self.name, reason)


class RemoteSource(StudySource):
    """A server behind the cache: the retrieve order, resume and progress live here once; the
    protocols only list a series' instances and fetch instances."""

    cache: DicomCache

    def study_series(self, study_uid: str) -> list[SeriesResult]:
        """The server's series list; when the server cannot be reached, the series this cache
        holds complete, so a study opened before reopens offline."""
        try:
            series = self.find_series(study_uid)
        except PacsError:
            cached = self.cache.cached_series(study_uid)
            if not cached:
                raise
            return cached
        self.cache.save_series_list(study_uid, series)
        return series

    def retrieve_series(self, study_uid: str, series_uid: str, progress: Optional[ProgressFn] = None,
                        cancelled: Optional[CancelledFn] = None,
                        on_first: Optional[Callable[[Path], None]] = None) -> Path:
        """Bring one series into the cache and return its folder.

        The middle instance comes first (``on_first(path)`` is called as soon as it is on disk, so
        a viewer can show it), then the rest; a series already complete in the cache is returned
        without the network, and a cancelled one resumes with only what is missing."""
        progress = progress or no_progress
        cache = self.cache
        if cache.is_complete(study_uid, series_uid):
            cache.touch(study_uid, series_uid)
            progress(1.0, "From the cache")
            return cache.series_dir(study_uid, series_uid)
        lock = threading.Lock()
        have = set(cache.instance_uids(study_uid, series_uid))
        busy: set[str] = set()
        wanted: set[str] = set()

        def sink(sop: str, data: Optional[bytes] = None, dataset=None) -> None:
            """Write one arrived instance (bytes or a dataset) and report it; runs on any thread."""
            with lock:
                if sop in have or sop in busy:
                    return
                busy.add(sop)
            cache.write(study_uid, series_uid, sop, data=data, dataset=dataset)
            with lock:
                busy.discard(sop)
                have.add(sop)
                done, n = len(have & wanted) if wanted else len(have), len(wanted)
            if n:
                progress(min(done, n) / n, f"Retrieved {done}/{n}")

        # Nothing cached yet: the whole series streams at once (as fast as a bare client) while,
        # beside it, the instance list names the middle slice and that one is fetched on its own,
        # so the viewer has it first. A resumed retrieve asks only for what is missing.
        stream = None
        stop = threading.Event()

        def stopped() -> bool:
            return stop.is_set() or (cancelled is not None and cancelled())

        if not have and self.can_stream_beside():
            stream = _Background(lambda: self.fetch_instances(study_uid, series_uid, None, sink, stopped))
        try:
            sops = self.list_instances(study_uid, series_uid)
            if not sops:
                raise self.fail(f"series {series_uid} has no instances")
            with lock:
                wanted.update(sops)
            n = len(sops)
            middle = sops[n // 2]
            if middle not in have:
                self.fetch_instances(study_uid, series_uid, [middle], sink, stopped)
            while middle in busy:  # the stream thread is writing it right now
                time.sleep(0.002)
            if middle not in have:
                raise self.fail(f"the middle instance {middle} of series {series_uid} did not arrive")
            progress(len(have & wanted) / n, f"First slice: {len(have & wanted)}/{n}")
            if on_first is not None:
                on_first(cache.instance_path(study_uid, series_uid, middle))
            if stream is not None:
                stream.join()
            check_cancelled(cancelled)
            missing = [s for s in sops if s not in have]
            if missing:
                check_cancelled(cancelled)
                # a few missing (a resumed retrieve): one by one; most of it: the whole series at once
                whole = len(missing) > n // 2
                self.fetch_instances(study_uid, series_uid, None if whole else missing, sink, stopped)
        except BaseException:
            stop.set()
            if stream is not None:
                stream.join(quiet=True)
            raise
        still = [s for s in sops if not cache.has(study_uid, series_uid, s)]
        if still:
            raise self.fail(f"{len(still)} of {n} instance(s) of series {series_uid} did not arrive")
        cache.mark_complete(study_uid, series_uid, n)
        progress(1.0, f"Retrieved {n} instance(s)")
        return cache.series_dir(study_uid, series_uid)

    def can_stream_beside(self) -> bool:
        """Whether two retrieves of this source may run at once (not so for C-MOVE, whose
        instances come back to our one storage port)."""
        return True

    @abstractmethod
    def list_instances(self, study_uid: str, series_uid: str) -> list[str]:
        """SOP Instance UIDs of a series, in InstanceNumber order."""

    @abstractmethod
    def fetch_instances(self, study_uid: str, series_uid: str, sop_uids: Optional[list[str]],
                        sink: InstanceSink, cancelled: Optional[CancelledFn] = None) -> None:
        """Retrieve the given instances (None: the whole series) and hand each to ``sink``."""



_DIMSE_RE = re.compile(r"^dicom://(?:(?P<aet>[^@/]+)@)?(?P<host>[^:/]+)(?::(?P<port>\d+))?/?$")


def parse_source(spec: str, sources: Optional[dict[str, SourceConfig]] = None) -> SourceConfig:
    """A configured name, ``http(s)://HOST:PORT/PATH``, ``dicom://AET@HOST:PORT`` or a folder."""
    sources = load_sources() if sources is None else sources
    if spec in sources:
        return sources[spec]
    if spec.startswith(("http://", "https://")):
        return _web_config(spec)
    m = _DIMSE_RE.match(spec)
    if m:
        return SourceConfig(name=spec, kind="dimse", host=m["host"], port=int(m["port"] or 104),
                            called_aet=m["aet"] or "ANY-SCP")
    if Path(spec).exists():
        return SourceConfig(name=spec, kind="folder", path=spec)
    known = ", ".join(sorted(sources)) or "none configured"
    raise PacsError(spec, f"not a configured source ({known}), a http(s):// DICOMweb root, "
                          "a dicom://AET@HOST:PORT address or an existing folder")


def _web_config(url: str) -> SourceConfig:
    """A DICOMweb root; ``user:password@`` in it becomes basic auth and leaves the URL (and with
    it every log line and message that names the source)."""
    parts = urlsplit(url.rstrip("/"))
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    clean = parts._replace(netloc=netloc).geturl()
    cfg = SourceConfig(name=clean, kind="dicomweb", url=clean)
    if parts.username is not None:
        from urllib.parse import unquote

        cfg.auth, cfg.username, cfg.password = "basic", unquote(parts.username), unquote(parts.password or "")
    return cfg


def sources_file() -> Path:
    from medview.config import user_config_dir

    return user_config_dir() / "pacs_sources.json"


def load_sources(path: Optional[Path] = None) -> dict[str, SourceConfig]:
    path = path or sources_file()
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PacsError(str(path), f"unreadable source settings: {exc}") from None
    out = {}
    known = set(SourceConfig.__dataclass_fields__)
    for entry in raw.get("sources", []):
        cfg = SourceConfig(**{k: v for k, v in entry.items() if k in known})
        if cfg.kind not in ("folder", "dicomweb", "dimse") or cfg.auth not in ("none", "basic", "bearer"):
            raise PacsError(str(path), f"source {cfg.name!r}: kind must be folder/dicomweb/dimse and auth "
                                       "none/basic/bearer")
        out[cfg.name] = cfg
    return out


def save_sources(sources: dict[str, SourceConfig], path: Optional[Path] = None) -> Path:
    path = path or sources_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sources": [asdict(c) for c in sources.values()]}, indent=2))
    try:
        path.chmod(0o600)  # it may hold passwords
    except OSError:
        pass
    return path
