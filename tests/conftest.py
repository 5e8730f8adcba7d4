"""Test-wide settings: hypothesis is derandomized, so every run draws the same examples (seeded, reproducible)."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "bnwd", derandomize=True, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("bnwd")
