"""Reslicing of volumes onto planes in patient (LPS) space, and hanging protocols: no Qt."""

from medview.viewing.fast_reslice import Reslicer
from medview.viewing.plane import Plane, standard_plane
from medview.viewing.reslice import reslice

__all__ = ["Plane", "Reslicer", "standard_plane", "reslice"]
