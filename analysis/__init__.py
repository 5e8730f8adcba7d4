"""The analysis of any run, simulated or measured (built on :mod:`bnwd.theory`)."""
