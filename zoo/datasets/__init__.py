"""Datasets loading from a local root; never downloading."""
