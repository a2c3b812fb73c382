"""Interactive (promptable) segmentation: clicks, boxes and scribbles -> a mask (no Qt).

``guidance`` encodes prompts as network channels and maps the square "focus" view between image
and network; ``simulate`` is the standard simulated annotator (training and benchmark);
``model`` runs a bundled interactive package; ``propagation`` carries a slice's mask through a
3D series; ``training`` is ``medview train interactive-2d``.
"""
