"""Toy scale-invariant models and their vectorised integrators (built on :mod:`bnwd.analysis`)."""
