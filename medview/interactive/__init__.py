"""Interactive (promptable) segmentation: clicks, boxes and scribbles -> a mask (no Qt).

``guidance`` encodes prompts as network channels and maps a view (2D square ``View`` or N-D
``Crop``) between image and network; ``simulate`` is the standard simulated annotator (training
and benchmark); ``model`` runs a bundled 2D interactive package, ``model3d`` a 3D one;
``session`` applies either to a label map (2D + slice propagation, or one 3D pass); ``training``
is ``medview train interactive-2d``, ``training3d`` ``medview train interactive-3d``; ``card``
writes their model cards.
"""
