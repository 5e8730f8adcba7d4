"""What defines a run: :class:`TrainConfig` and :class:`RunSpec`, plain dataclasses without torch.

Every field carries its help text and its domain (or its choices) as metadata: the dataclasses check their values
against them, and the command line (:mod:`paper_checks.cli.options`) generates its train and sweep options from them.
The names of the nets and data sets a run may give are those of the records of :mod:`bnwd.empirical.catalog`, which
needs no torch: neither the checks here nor ``bnwd --help`` import it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import MISSING, dataclass, field

from bnwd.empirical.catalog import DATASET_NAMES, MODEL_NAMES, DatasetName, ModelName

__all__ = [
    "DEVICES",
    "DOMAINS",
    "DTYPES",
    "MAY_CHANGE_ON_RESUME",
    "RunSpec",
    "TrainConfig",
    "check_fields",
    "domain_text",
    "in_domain",
    "option",
    "value_type",
]

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")
MAY_CHANGE_ON_RESUME = ("steps", "epochs", "checkpoint_every", "device", "channels_last")
"""The run fields a resumed run may give other values than its checkpoint's: how long it trains (to extend it),
how often it checkpoints, where and in which memory format it runs. Every other field decides what is trained; a
resume that changes one is refused (:meth:`empirical.trainer.Trainer.resume`)."""

DOMAINS = {
    "> 0": lambda v: v > 0,
    ">= 0": lambda v: v >= 0,
    ">= 1": lambda v: v >= 1,
    "in [0, 1)": lambda v: 0 <= v < 1,
}
"""The numeric domains a field may name, each a predicate on a finite number."""


def in_domain(value, domain: str | None) -> bool:
    """Whether the number ``value`` is finite and in ``domain`` (a key of :data:`DOMAINS`; None: any finite)."""
    return math.isfinite(value) and (domain is None or DOMAINS[domain](value))


def domain_text(domain: str | None, integer: bool) -> str:
    """What a number in ``domain`` is, in words: ``"an integer >= 1"``, ``"finite and > 0"``, ``"finite"``."""
    if integer:
        return "an integer" + (f" {domain}" if domain else "")
    return "finite" + (f" and {domain}" if domain else "")


@functools.cache
def value_type(cls: type, name: str) -> type:
    """The type of the dataclass ``cls``'s field ``name`` without its ``None``: ``bool``, ``int``, ``float`` or
    ``str``, that of its values for a ``Literal`` (resolved once per field: ``typing.get_type_hints`` takes ~0.5 ms)."""
    declared = typing.get_type_hints(cls)[name]
    if typing.get_origin(declared) is typing.Literal:
        return type(typing.get_args(declared)[0])
    return next(t for t in (bool, int, float, str) if t == declared or t in typing.get_args(declared))


def option(default=MISSING, *, help: str, domain: str | None = None, choices: tuple[str, ...] | None = None, **more):
    """A dataclass field with its command-line help and its domain or choices.

    ``more`` may hold ``bare`` (the value of the flag given without one) and ``excludes`` (the name of a field that
    may not be given with this one on the command line).
    """
    return field(default=default, metadata={"help": help, "domain": domain, "choices": choices, **more})


def check_fields(config) -> None:
    """Raise ``ValueError`` naming the first field of the dataclass ``config`` outside its domain or choices."""
    for f in dataclasses.fields(config):
        value, domain, choices = getattr(config, f.name), f.metadata.get("domain"), f.metadata.get("choices")
        if value is None or isinstance(value, bool):
            continue
        if choices is not None and value not in choices:
            raise ValueError(f"{f.name} must be one of {', '.join(choices)}; got {value!r}")
        if choices is None and isinstance(value, int | float) and not in_domain(value, domain):
            integer = value_type(type(config), f.name) is int
            raise ValueError(f"{f.name} must be {domain_text(domain, integer)}; got {value!r}")


@dataclass
class TrainConfig:
    """Everything that defines a run (written to ``config.json``).

    ``steps`` counts optimiser steps (one per minibatch, or one per epoch in full-batch mode). ``noninv_lr`` is the
    learning rate of the parameters that are not scale-invariant (0 freezes them; None: 0 for the SI nets, ``lr``
    for nets whose every parameter is trained). ``fix_norm`` projects the SI weights back to that norm after every
    step (0: to their initial norm ρ₀); ``fix_elr`` sets ``lr = fix_elr·ρ₀²`` with that projection.
    ``sharpness_every`` K > 0 measures the effective sharpness s̃ of the step's loss at least every K steps, where
    η̃·s̃ is predicted to cross 2(1−ηλ), and at the step before ρ rises; the latest upward crossing before each
    destabilisation is then located to one step over the weights of the last K steps (:mod:`empirical.tracking`).
    ``batch_sharpness_every`` K > 0 measures the batch sharpness (:func:`empirical.curvature.batch_sharpness`) on
    random minibatches every K steps. Neither changes the training.
    """

    lr: float = option(help="learning rate of the SI weights", domain="> 0")
    wd: float = option(help="weight decay", domain=">= 0")
    steps: int = option(4000, help="optimiser steps", domain=">= 1")
    momentum: float = option(0.0, help="heavy-ball momentum β", domain="in [0, 1)")
    batch_size: int = option(128, help="samples per minibatch", domain=">= 1")
    noninv_lr: float | None = option(None, help="lr of the other parameters", domain=">= 0")
    fix_norm: float | None = option(
        None,
        help="project the SI weights to this norm after each step (no value: their initial norm)",
        domain=">= 0",
        bare=0.0,
        excludes="fix_elr",
    )
    fix_elr: float | None = option(None, help="fixed effective learning rate", domain="> 0")
    full_batch: bool = option(False, help="deterministic full-batch GD (ghost batches)")
    augment: bool = option(False, help="random crop and flip, as suits the data (empirical.data.AUGMENTATION)")
    seed: int = option(0, help="seed of the initialisation, the data order and the augmentation")
    eval_points: int = option(20, help="log-spaced evaluations", domain=">= 0")
    checkpoint_every: int = option(0, help="steps between checkpoints, 0 for none", domain=">= 0")
    sharpness_every: int = option(
        0,
        help="measure the effective sharpness at least every K steps and locate each crossing of 2(1−ηλ), 0 for never",
        domain=">= 0",
    )
    batch_sharpness_every: int = option(0, help="measure the batch sharpness every K steps, 0 for never", domain=">= 0")

    def __post_init__(self):
        check_fields(self)
        from bnwd.theory.numeric import validate  # here: `bnwd --help` imports this module, and sympy takes seconds

        validate(lr=self.lr, wd=self.wd, momentum=self.momentum)  # and lr·wd < 1
        if self.fix_norm is not None and self.fix_elr is not None:
            raise ValueError("fix_norm and fix_elr exclude each other")


@dataclass
class RunSpec(TrainConfig):
    """One training run: every :class:`TrainConfig` field (validated the same way), then the net and the data.

    ``epochs`` (optional) overrides ``steps`` with that many passes over the training set. ``train_subset`` keeps
    the first that many training samples of the seeded split (fast full-batch runs). ``device`` is ``"auto"``
    (CUDA when torch sees one), ``"cpu"`` or ``"cuda"``. ``allow_tf32`` lets CUDA run float32 matmuls and
    convolutions in TF32 (faster, ~1e-3 relative; :func:`empirical.runs.cuda_numerics`).
    """

    # RUF009: option() is a dataclasses.field; ruff sees that only for fields of a type it knows immutable
    model: ModelName = option("convnet_si", help="the net (empirical.nets.MODELS)", choices=MODEL_NAMES)  # noqa: RUF009
    width: int = option(8, help="channels of the first block", domain=">= 1")
    data: DatasetName = option(  # noqa: RUF009
        "digits", help="the data set (empirical.data.load_dataset)", choices=DATASET_NAMES
    )
    data_dir: str | None = option(None, help="folder of the data files (CIFAR: required)")
    train_subset: int | None = option(None, help="train on the first N samples of the split only", domain=">= 1")
    init_scale: float = option(10.0, help="Frobenius norm of the head", domain="> 0")
    epochs: int | None = option(None, help="passes over the data instead of --steps", domain=">= 1", excludes="steps")
    dtype: str = option("float32", help="floating-point type of the weights and data", choices=DTYPES)
    device: str = option("auto", help="auto: CUDA when torch sees one", choices=DEVICES)
    channels_last: bool = option(False, help="NHWC memory format (faster on CPUs)")
    allow_tf32: bool = option(
        False, help="CUDA: TF32 matmuls and convolutions (faster, ~1e-3 relative, recorded; default strict float32)"
    )

    def replace(self, **changes) -> RunSpec:
        return dataclasses.replace(self, **changes)
