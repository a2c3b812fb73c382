"""Annotation core: label maps, edit operations, undo/redo, provenance, autosave, export.

No Qt here (the tools that drive it live in ``medview.ui.annotation_*``).
"""

from medview.annotation.history import EditHistory, Entry
from medview.annotation.labelmap import Label, LabelMap, Provenance, default_color, reviewer_name
from medview.annotation.ops import (
    AXIAL,
    CORONAL,
    SAGITTAL,
    Change,
    copy_slice,
    fill_polygon,
    flood_fill,
    interpolate_slices,
    keep_largest_component,
    labelled_slices,
    paint,
    remove_small_islands,
    set_region,
)

__all__ = [
    "AXIAL", "CORONAL", "SAGITTAL", "Change", "EditHistory", "Entry", "Label", "LabelMap", "Provenance",
    "copy_slice", "default_color", "fill_polygon", "flood_fill", "interpolate_slices",
    "keep_largest_component", "labelled_slices", "paint", "remove_small_islands", "reviewer_name", "set_region",
]
