"""MedView: a desktop AI review workstation for medical images (research use only)."""

__version__ = "0.1.0"
