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
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from medview.pacs.model import PacsError, SeriesResult, StudyQuery, StudyResult
from medview.progress import CancelledFn, ProgressFn

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
                        cancelled: Optional[CancelledFn] = None) -> Path:
        """Bring one series into the cache (middle slice first); returns its folder."""

    @abstractmethod
    def store(self, files: list[Path], progress: Optional[ProgressFn] = None) -> int:
        """Send DICOM files (SEG, SR, images) to the source; returns how many were stored."""

    def retrieve_study(self, study_uid: str, progress: Optional[ProgressFn] = None,
                       cancelled: Optional[CancelledFn] = None) -> list[Path]:
        """Every series of a study into the cache; returns their folders."""
        from medview.progress import check_cancelled, no_progress

        progress = progress or no_progress
        series = self.find_series(study_uid)
        out = []
        for i, s in enumerate(series):
            check_cancelled(cancelled)
            base, span = i / max(len(series), 1), 1 / max(len(series), 1)

            def sub(f: float, stage: str, base=base, span=span) -> None:
                progress(base + f * span, stage)

            out.append(self.retrieve_series(study_uid, s.series_uid, sub, cancelled))
        progress(1.0, f"Retrieved {len(series)} series")
        return out

    def fail(self, reason: str) -> PacsError:
        return PacsError(self.name, reason)


_DIMSE_RE = re.compile(r"^dicom://(?:(?P<aet>[^@/]+)@)?(?P<host>[^:/]+)(?::(?P<port>\d+))?/?$")


def parse_source(spec: str, sources: Optional[dict[str, SourceConfig]] = None) -> SourceConfig:
    """A configured name, ``http(s)://HOST:PORT/PATH``, ``dicom://AET@HOST:PORT`` or a folder."""
    sources = load_sources() if sources is None else sources
    if spec in sources:
        return sources[spec]
    if spec.startswith(("http://", "https://")):
        return SourceConfig(name=spec, kind="dicomweb", url=spec.rstrip("/"))
    m = _DIMSE_RE.match(spec)
    if m:
        return SourceConfig(name=spec, kind="dimse", host=m["host"], port=int(m["port"] or 104),
                            called_aet=m["aet"] or "ANY-SCP")
    if Path(spec).exists():
        return SourceConfig(name=spec, kind="folder", path=spec)
    known = ", ".join(sorted(sources)) or "none configured"
    raise PacsError(spec, f"not a configured source ({known}), a http(s):// DICOMweb root, "
                          "a dicom://AET@HOST:PORT address or an existing folder")


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
