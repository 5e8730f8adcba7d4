"""Real training of scale-invariant torch networks with online metrics (built on :mod:`bnwd.simulate`)."""
