"""Which StudySource implementation serves a configured name or address (kept apart from the
interface in source.py so that the implementations can import the interface without a cycle)."""

from __future__ import annotations

from medview.pacs.model import PacsError
from medview.pacs.source import SourceConfig, StudySource, parse_source


def open_source(spec: str | SourceConfig, cache=None) -> StudySource:
    """The StudySource for a name/address/config; ``cache`` defaults to the user cache."""
    from medview.pacs.cache import DicomCache

    cfg = spec if isinstance(spec, SourceConfig) else parse_source(spec)
    cache = cache or DicomCache.default()
    if cfg.kind == "dicomweb":
        from medview.pacs.dicomweb import DicomWebSource

        return DicomWebSource(cfg, cache)
    if cfg.kind == "dimse":
        from medview.pacs.dimse import DimseSource

        return DimseSource(cfg, cache)
    if cfg.kind == "folder":
        from medview.pacs.folder import FolderSource

        return FolderSource(cfg, cache)
    raise PacsError(cfg.name, f"unknown source kind {cfg.kind!r} (folder, dicomweb or dimse)")
