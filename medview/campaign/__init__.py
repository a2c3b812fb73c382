"""Labelling campaigns (core, no Qt): batch inference on Dask, uncertainty ranking, fine-tuning
from corrections, several readers and adjudication. See docs/CAMPAIGNS.md."""
