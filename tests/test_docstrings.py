"""The examples in bnwd's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("theory", "analysis", "simulate", "empirical", "paper_checks")
MODULES = sorted(
    info.name
    for package in PACKAGES
    for info in pkgutil.walk_packages(importlib.import_module(f"bnwd.{package}").__path__, f"bnwd.{package}.")
    if not info.name.endswith(("lightning_callback", "__main__"))
)


def test_the_modules_are_found():
    assert {"bnwd.analysis.detection", "bnwd.analysis.destabilization", "bnwd.paper_checks.cli.train_cmd"} <= set(
        MODULES
    )


@pytest.mark.parametrize("name", ["bnwd", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failed, _ = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failed == 0, f"{failed} docstring example(s) of {name} printed something else"


def test_a_wrong_example_fails():  # the control: doctest is not silently skipped
    def example():
        """>>> 1 + 1
        3
        """

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(verbose=False)
    for test in finder.find(example, "example", globs={}):
        runner.run(test, out=lambda _: None)
    assert runner.failures == 1
