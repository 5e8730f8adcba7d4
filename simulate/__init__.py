"""Vectorised numpy simulation of scale-invariant training dynamics (built on :mod:`theory`)."""
