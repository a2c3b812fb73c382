"""All Qt code of MedView: windows, slice views, tools and workers (nothing here is imported by the core)."""
