"""AI inference engine: model packages, pre-processing, running networks, explainability.

No Qt here; torch/monai are imported lazily inside functions so importing this package is cheap.
"""
