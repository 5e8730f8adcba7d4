"""What every ``bnwd`` command shares: the usage error, the argument types, the options of a run and of the output.

A run's options are generated from the fields of :class:`empirical.config.RunSpec` (flag, type, domain, choices,
default, help), so that a field added there is an option of ``bnwd train`` and ``bnwd sweep`` at once. This module
imports no torch: ``bnwd --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from bnwd.empirical.config import DOMAINS, RunSpec, domain_text, in_domain, value_type

__all__ = [
    "Parser",
    "UsageError",
    "add_command",
    "add_spec_option",
    "add_spec_options",
    "add_together_option",
    "numbers",
    "positive_int",
    "positive_number",
    "prepare_out",
    "require_gpu",
    "resolve_device",
    "spec_values",
]

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class UsageError(Exception):
    """A problem with what the user asked for; reported in one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints the whole usage block first
        raise UsageError(message)


def numbers(kind: type = float, domain: str | None = None, *, many: bool = False):
    """An argparse type: one finite number of type ``kind`` in ``domain`` (a key of
    :data:`empirical.config.DOMAINS`; None: any), or with ``many`` a comma-separated list of one or more."""
    if domain is not None and domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")
    noun = "integer" if kind is int else "number"

    def parse(text: str):
        items = [item for item in text.split(",") if item.strip()] if many else [text]
        try:
            values = [kind(item) for item in items]
        except ValueError:
            wanted = f"a comma-separated list of {noun}s" if many else f"{'an' if kind is int else 'a'} {noun}"
            raise argparse.ArgumentTypeError(f"not {wanted}: {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"needs one or more {noun}s: {text!r}")
        if not all(in_domain(value, domain) for value in values):
            each = "each must be" if many else "must be"
            raise argparse.ArgumentTypeError(f"{each} {domain_text(domain, kind is int)}: {text!r}")
        return values if many else values[0]

    return parse


positive_int = numbers(int, ">= 1")
positive_number = numbers(float, "> 0")


def add_command(commands, name: str, run, *, help: str, description: str, progress: bool = False):
    """Add command ``name`` to ``commands`` (the ``bnwd`` sub-parsers) and return its parser: ``run(args)`` does the
    work, ``--out`` names its output folder (``runs/<name>`` by default), and a command that shows progress bars
    (``progress``) has ``--quiet``."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("--out", type=Path, default=Path("runs", name), help="output folder (default: %(default)s)")
    if progress:
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)
    return parser


def add_together_option(parser: argparse.ArgumentParser, default: int, which: str) -> None:
    """``--together K``: how many runs of one architecture and batch size are trained as one computation
    (:func:`empirical.runs.train_runs`); ``which`` names the runs it applies to."""
    parser.add_argument(
        "--together",
        type=positive_int,
        default=default,
        metavar="K",
        help=f"train up to K runs of one architecture as one computation ({which}; 1: one at a time; "
        "default: %(default)s)",
    )


_FIELDS = {f.name: f for f in dataclasses.fields(RunSpec)}


def add_spec_option(parser, name: str, *, many: str | None = None, **overrides) -> None:
    """Add the option of the :class:`~empirical.config.RunSpec` field ``name`` to ``parser`` (a parser or a
    mutually exclusive group), with ``dest`` the field's name.

    Its flag is ``--name-with-dashes``; a bool is a switch; a number is parsed and checked in the field's domain; a
    field without a default is required. ``many``, if given, is the flag of a comma-separated list instead (a grid's
    axis; default None). ``overrides`` replace any of the generated ``add_argument`` keywords.
    """
    spec_field = _FIELDS[name]
    meta = spec_field.metadata
    kind = value_type(RunSpec, name)
    kwargs = {"dest": name, "help": meta["help"]}
    if kind is bool:
        kwargs["action"] = "store_true"
    else:
        if meta["choices"] is not None:
            kwargs["choices"] = meta["choices"]
        elif kind is not str:
            kwargs["type"] = numbers(kind, meta["domain"], many=many is not None)
        if many is not None:
            kwargs.update(
                default=None,
                metavar=many.lstrip("-").upper(),
                help=f"{meta['help']}: one run for each, comma-separated",
            )
        elif spec_field.default is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = spec_field.default
            if spec_field.default is not None:
                kwargs["help"] += " (default: %(default)s)"
        if "bare" in meta and many is None:
            kwargs.update(nargs="?", const=meta["bare"])
    kwargs.update(overrides)
    parser.add_argument(many or f"--{name.replace('_', '-')}", **kwargs)


def add_spec_options(parser: argparse.ArgumentParser, *, many: dict[str, str] | None = None) -> None:
    """Add an option for every :class:`~empirical.config.RunSpec` field (:func:`add_spec_option`), those that
    exclude each other in a mutually exclusive group; ``many`` maps the fields that are lists to their flags.
    :func:`spec_values` reads them back."""
    many = many or {}
    excluding = {name: f.metadata["excludes"] for name, f in _FIELDS.items() if "excludes" in f.metadata}
    partners = {**excluding, **{other: name for name, other in excluding.items()}}
    added = set()
    for name in _FIELDS:
        if name in added:
            continue
        together = (name, partners[name]) if name in partners else (name,)  # a pair side by side in the usage
        target = parser.add_mutually_exclusive_group() if len(together) == 2 else parser
        for member in together:
            add_spec_option(target, member, many=many.get(member))
        added.update(together)
    parser.set_defaults(spec_fields=tuple(_FIELDS))


def spec_values(args: argparse.Namespace) -> dict:
    """The :class:`~empirical.config.RunSpec` fields of the options :func:`add_spec_options` added, by name."""
    return {name: getattr(args, name) for name in args.spec_fields}


def prepare_out(out: Path) -> None:
    """Create the output folder first, and check that files can be written in it: fail before the work, not after
    it."""
    from bnwd.analysis.records import check_writable  # here: `bnwd --help` loads no numpy

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot create that folder ({error.strerror or error})") from None
    try:
        check_writable(out)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot write in that folder ({error.strerror or error})") from None


def resolve_device(device: str) -> str:
    """``"cpu"`` or ``"cuda"`` for the ``--device`` the user gave (:func:`empirical.runs.resolve_device`)."""
    from bnwd.empirical.runs import resolve_device

    try:
        return resolve_device(device)
    except ValueError as error:  # "device cuda: …" names the option without its dashes
        raise UsageError(f"--{error}") from None


def require_gpu(device: str, asked: str, what: str) -> None:
    """A usage error for work meant for a GPU that ``device`` (resolved from ``asked``) is not, unless the user
    asked for the CPU by name."""
    if device != "cuda" and asked != "cpu":
        raise UsageError(f"{what} and needs a CUDA GPU (pass --device cpu to run it on the CPU regardless)")
