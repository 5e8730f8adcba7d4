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
    "INITIAL_NORM",
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
INITIAL_NORM = 0.0
"""``fix_norm``'s value for "the SI weights' initial norm ρ₀" (the flag ``--fix-norm`` without a number): not a norm
(a norm is > 0), so it means nothing else, and the run ids of such runs, written before it had a name, stay."""
_EVAL_POINTS = 20  # TrainConfig.eval_points' default

DOMAINS = {
    "> 0": lambda v: v > 0,
    ">= 0": lambda v: v >= 0,
    ">= 1": lambda v: v >= 1,
    "in [0, 1)": lambda v: 0 <= v < 1,
    "in [0, 2**32)": lambda v: 0 <= v < 2**32,
    "in (0, 1e18]": lambda v: 0 < v <= 1e18,
    "in [1, 2**53]": lambda v: 1 <= v <= 2**53,
    "in [1, 1024]": lambda v: 1 <= v <= 1024,
}
"""The numeric domains a field may name, each a predicate on a finite number."""


def in_domain(value, domain: str | None) -> bool:
    """Whether the number ``value`` is finite and in ``domain`` (a key of :data:`DOMAINS`; None: any finite)."""
    # an int is always finite, and math.isfinite cannot take one beyond the floats (OverflowError)
    finite = isinstance(value, int) or math.isfinite(value)
    return finite and (domain is None or DOMAINS[domain](value))


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

    ``more`` may hold ``bare`` (the value of the flag given without one, outside ``domain``: it stands for something
    the field's numbers cannot say) and ``excludes`` (the name of a field that may not be given with this one on the
    command line).
    """
    return field(default=default, metadata={"help": help, "domain": domain, "choices": choices, **more})


def check_fields(config) -> None:
    """Raise ``ValueError`` naming the first field of the dataclass ``config`` outside its domain or choices (its
    ``bare`` value, if it has one, is allowed)."""
    for f in dataclasses.fields(config):
        value, domain, choices = getattr(config, f.name), f.metadata.get("domain"), f.metadata.get("choices")
        if value is None or isinstance(value, bool) or ("bare" in f.metadata and value == f.metadata["bare"]):
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
    step (:data:`INITIAL_NORM`: to their initial norm ρ₀); ``fix_elr`` sets ``lr = fix_elr·ρ₀²`` with that projection.
    ``sharpness_every`` K > 0 measures the effective sharpness s̃ of the step's loss at least every K steps, where
    η̃·s̃ is predicted to cross 2(1−ηλ), and at the step before ρ rises; the latest upward crossing before each
    destabilisation is then located to one step over the weights of the last K steps (:mod:`empirical.tracking`).
    ``batch_sharpness_every`` K > 0 measures the batch sharpness (:func:`empirical.curvature.batch_sharpness`) on
    random minibatches every K steps. Neither changes the training.
    """

    lr: float = option(help="learning rate of the SI weights", domain="> 0")
    wd: float = option(help="weight decay", domain=">= 0")
    # up to 2**53, each step is a float too (the evaluations' log-spaced steps are computed in floats)
    steps: int = option(4000, help="optimiser steps", domain="in [1, 2**53]")
    momentum: float = option(0.0, help="heavy-ball momentum β", domain="in [0, 1)")
    batch_size: int = option(128, help="samples per minibatch", domain=">= 1")
    noninv_lr: float | None = option(None, help="lr of the other parameters", domain=">= 0")
    fix_norm: float | None = option(
        None,
        help="project the SI weights to this norm after each step (no value: their initial norm)",
        domain="> 0",
        bare=INITIAL_NORM,
        excludes="fix_elr",
    )
    fix_elr: float | None = option(None, help="fixed effective learning rate", domain="> 0")
    full_batch: bool = option(False, help="deterministic full-batch GD (ghost batches)")
    augment: bool = option(False, help="random crop and flip, as suits the data (empirical.data.AUGMENTATION)")
    # every generator takes a seed below 2**32 (sklearn's split the fewest), and so does every seed derived from it
    seed: int = option(
        0, help="seed of the initialisation, the data order and the augmentation", domain="in [0, 2**32)"
    )
    eval_points: int = option(_EVAL_POINTS, help="log-spaced evaluations, at most one a step", domain=">= 0")
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
        steps = self._known_steps()
        # more than steps + 1 are the same steps again (their schedule is made in memory first); the default stays
        # allowed for short runs, which then evaluate at every step
        most = None if steps is None else max(steps + 1, _EVAL_POINTS)
        if most is not None and self.eval_points > most:
            raise ValueError(
                f"eval_points must be at most max(steps + 1, {_EVAL_POINTS}) = {most}: an evaluation a step and "
                f"one before the first; got {self.eval_points}"
            )

    def _known_steps(self) -> int | None:
        """The steps the run trains, if its fields alone say it."""
        return self.steps


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
    # 32× the paper's 32: ConvNetSI has ~378·c² weights (4e8 at 1024), ResNet-18 ~2.7e3·c²; far wider nets ask for
    # terabytes before the first step
    width: int = option(8, help="channels of the first block", domain="in [1, 1024]")
    data: DatasetName = option(  # noqa: RUF009
        "digits", help="the data set (empirical.data.load_dataset)", choices=DATASET_NAMES
    )
    data_dir: str | None = option(None, help="folder of the data files (CIFAR: required)")
    train_subset: int | None = option(None, help="train on the first N samples of the split only", domain=">= 1")
    # beyond ~1.8e19 (√ of float32's largest number) a float32 run's norms overflow, and beyond ~1e35 a float64
    # run's probe for the SI weights finds none (empirical.scale_invariance): one round bound for both
    init_scale: float = option(10.0, help="Frobenius norm of the head", domain="in (0, 1e18]")
    epochs: int | None = option(
        None, help="passes over the data instead of --steps", domain="in [1, 2**53]", excludes="steps"
    )
    dtype: str = option("float32", help="floating-point type of the weights and data", choices=DTYPES)
    device: str = option("auto", help="auto: CUDA when torch sees one", choices=DEVICES)
    channels_last: bool = option(False, help="NHWC memory format (faster on CPUs)")
    allow_tf32: bool = option(
        False, help="CUDA: TF32 matmuls and convolutions (faster, ~1e-3 relative, recorded; default strict float32)"
    )

    def _known_steps(self) -> int | None:
        """None with ``epochs``: the steps then depend on the data's size, and the :class:`TrainConfig` the trainer
        is given checks them (:func:`empirical.runs.build_trainer`)."""
        return self.steps if self.epochs is None else None

    def replace(self, **changes) -> RunSpec:
        return dataclasses.replace(self, **changes)
