"""Studies in, volumes out. No Qt here. See docs/IO_API.md."""

from medview.io.errors import LoadError
from medview.io.loading import load_series, load_volume, save_volume
from medview.io.scan import scan
from medview.io.study_index import ImageRef, SeriesInfo, StudyIndex
from medview.io.volume import Volume

__all__ = ["Volume", "LoadError", "scan", "load_series", "load_volume", "save_volume", "SeriesInfo",
           "StudyIndex", "ImageRef"]
