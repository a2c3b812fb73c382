"""Study sources: folders, DICOMweb servers and DIMSE peers behind one interface (no Qt).

``open_source(spec)`` turns a configured name, an ``http(s)://`` DICOMweb root or a
``dicom://AET@HOST:PORT`` address into a :class:`StudySource`; the study browser and the
``medview pacs`` commands talk only to that interface.
"""

from medview.pacs.model import PacsError, SeriesResult, StudyQuery, StudyResult
from medview.pacs.registry import open_source
from medview.pacs.source import SourceConfig, StudySource, load_sources, parse_source

__all__ = ["PacsError", "SeriesResult", "SourceConfig", "StudyQuery", "StudyResult", "StudySource",
           "load_sources", "open_source", "parse_source"]
