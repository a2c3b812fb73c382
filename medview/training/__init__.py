"""Reproducible training and evaluation of the bundled models (no Qt; torch/monai lazily)."""
