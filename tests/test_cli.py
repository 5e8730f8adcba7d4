"""The ``bnwd`` command line: output files, exit codes, and one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnwd.empirical.catalog import DATASET_NAMES, DATASET_RECORDS, MODEL_NAMES, MODEL_RECORDS, DatasetName, ModelName
from bnwd.empirical.config import DEVICES, DTYPES, RunSpec
from bnwd.paper_checks.cli import COMMANDS, build_parser, main
from bnwd.paper_checks.cli.options import spec_values


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "required"),
        (["bogus"], "invalid choice"),
        (["theory", "--bogus"], "unrecognized arguments"),
        (["theory", "--only", "no_such_statement"], "unknown statement(s) no_such_statement"),
        (["theory", "--only", ","], "(none given)"),
    ],
)
def test_bad_arguments_print_one_line_and_exit_two(argv, fragment, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("bnwd: error: ") and fragment in captured.err


def test_unwritable_out_is_a_usage_error_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["theory", "--out", str(blocker / "sub")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "cannot create that folder" in captured.err


def test_console_entry_point_never_shows_a_traceback():
    done = subprocess.run(
        [sys.executable, "-m", "bnwd.paper_checks.cli", "theory", "--only"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_help_loads_neither_torch_nor_sympy():
    code = (
        "import sys\n"
        "from bnwd.paper_checks.cli import COMMANDS, main\n"
        "for argv in ([], *([command.__name__.split('.')[-1].removesuffix('_cmd')] for command in COMMANDS)):\n"
        "    try:\n"
        "        main([*argv, '--help'])\n"
        "    except SystemExit as done:\n"
        "        assert done.code == 0, argv\n"
        "print(sorted(name for name in ('torch', 'sympy', 'numpy') if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert done.stdout.count("usage: bnwd") == 1 + len(COMMANDS)


def _flags(spec: RunSpec, many: dict[str, str]) -> list[str]:
    """Command-line flags that give every field of ``spec`` (``many``: fields given as one-element lists)."""
    argv = []
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        flag = many.get(f.name, "--" + f.name.replace("_", "-"))
        if isinstance(value, bool):
            argv += [flag] if value else []
        elif value is not None and not (f.name == "steps" and spec.epochs is not None):
            argv += [flag, repr(value) if isinstance(value, float) else str(value)]
    return argv


@st.composite
def run_specs(draw) -> RunSpec:
    """Any valid :class:`RunSpec` the command line can give: ``steps`` or ``epochs``, ``fix_norm`` or ``fix_elr``."""
    epochs = draw(st.none() | st.integers(1, 1001))
    fixed = draw(st.sampled_from(["fix_norm", "fix_elr", None]))
    return RunSpec(
        lr=draw(st.floats(1e-4, 10)),
        wd=draw(st.floats(0, 1e-2)),
        steps=4000 if epochs is not None else draw(st.integers(1, 10**6)),
        momentum=draw(st.floats(0, 0.99)),
        batch_size=draw(st.integers(1, 512)),
        noninv_lr=draw(st.none() | st.floats(0, 1)),
        **({fixed: draw(st.floats(0.01, 100))} if fixed else {}),
        full_batch=draw(st.booleans()),
        augment=draw(st.booleans()),
        seed=draw(st.integers(0, 10**6)),
        eval_points=draw(st.integers(0, 20)),
        checkpoint_every=draw(st.integers(0, 1000)),
        sharpness_every=draw(st.integers(0, 100)),
        batch_sharpness_every=draw(st.integers(0, 100)),
        model=draw(st.sampled_from(MODEL_NAMES)),
        width=draw(st.integers(1, 64)),
        data=draw(st.sampled_from(DATASET_NAMES)),
        data_dir=draw(st.none() | st.text("abc/_-", min_size=1).filter(lambda text: not text.startswith("-"))),
        train_subset=draw(st.none() | st.integers(1, 1000)),
        init_scale=draw(st.floats(1e-3, 100)),
        epochs=epochs,
        dtype=draw(st.sampled_from(DTYPES)),
        device=draw(st.sampled_from(DEVICES)),
        channels_last=draw(st.booleans()),
        allow_tf32=draw(st.booleans()),
    )


@settings(max_examples=50)
@given(spec=run_specs())
def test_train_and_sweep_options_are_the_run_spec_fields(spec):
    """Every field is an option of ``bnwd train`` and ``bnwd sweep``, with its type and value, and nothing else."""
    parser = build_parser()
    trained = parser.parse_args(["train", *_flags(spec, {})])
    assert RunSpec(**spec_values(trained)) == spec
    swept = parser.parse_args(["sweep", *_flags(spec, {"lr": "--lr", "wd": "--wd", "seed": "--seeds"})])
    values = spec_values(swept)
    assert [values.pop(axis) for axis in ("lr", "wd", "seed")] == [[spec.lr], [spec.wd], [spec.seed]]
    assert values == {name: getattr(spec, name) for name in values}


def test_a_field_the_options_miss_is_caught():  # the control of the test above
    spec = RunSpec(lr=1, wd=0, allow_tf32=True)
    args = build_parser().parse_args(["train", *_flags(spec, {})])
    assert RunSpec(**spec_values(args)) == spec
    args.spec_fields = tuple(name for name in args.spec_fields if name != "allow_tf32")
    assert RunSpec(**spec_values(args)) != spec


def _choices(command: str, flag: str) -> tuple[str, ...]:
    """The choices of the option ``flag`` of ``bnwd command``."""
    commands = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    return tuple(next(action for action in commands.choices[command]._actions if flag in action.option_strings).choices)


def test_the_choices_of_net_and_data_are_the_names_of_the_records():
    """The records are the one list of nets and data sets: the options and the name types follow them."""
    assert _choices("train", "--model") == _choices("sweep", "--model") == tuple(MODEL_RECORDS)
    assert _choices("train", "--data") == _choices("sweep", "--data") == tuple(DATASET_RECORDS)
    assert _choices("check", "--data") == tuple(name for name in DATASET_RECORDS if name != "synthetic")
    assert typing.get_args(ModelName) == tuple(MODEL_RECORDS) and typing.get_args(DatasetName) == tuple(DATASET_RECORDS)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--lr", "0", "--wd", "0"], "argument --lr: must be finite and > 0: '0'"),
        (["--lr", "1", "--wd", "nan"], "argument --wd: must be finite and >= 0: 'nan'"),
        (["--lr", "1", "--wd", "0", "--width", "2.5"], "argument --width: not an integer: '2.5'"),
        (["--lr", "1", "--wd", "0", "--steps", "3", "--epochs", "2"], "--epochs: not allowed with argument --steps"),
        (["--lr", "1", "--wd", "0", "--fix-norm", "--fix-elr", "1"], "--fix-elr: not allowed with argument --fix-norm"),
        (["--lr", "1", "--wd", "0", "--data", "imagenet"], "invalid choice: 'imagenet'"),
    ],
)
def test_generated_options_check_their_domain(argv, fragment, capsys):
    assert main(["train", *argv]) == 2
    assert fragment in capsys.readouterr().err
