"""empiricist: an open workbench for empirical AI-safety science."""

__version__ = "0.1.0"
