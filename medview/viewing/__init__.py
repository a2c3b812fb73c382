"""Reslicing of volumes onto planes in patient (LPS) space: no Qt."""

from medview.viewing.plane import Plane, standard_plane
from medview.viewing.reslice import reslice

__all__ = ["Plane", "standard_plane", "reslice"]
