"""The package version. It sits below every layer so any module can read it without importing the face
(``labelfix/__init__``), which names modules of every layer."""

__version__ = "0.1.0"
