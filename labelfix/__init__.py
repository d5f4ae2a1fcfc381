"""labelfix: find and fix missing labels in multi-label image datasets."""

__version__ = "0.1.0"
