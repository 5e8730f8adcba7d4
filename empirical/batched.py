"""Many runs as one computation: K members of one architecture trained by one forward and backward pass.

Each member is a whole run — its own model (its own seed), data order, augmentation, optimizer with its η, λ, β,
:class:`~empirical.monitor.Monitor`, evaluations, checkpoints and files: a :class:`~empirical.trainer.Trainer`.
Only the gradient is computed together, by :func:`grouped_model`: every convolution of the K members becomes one
grouped convolution (``groups = K·groups``) over their inputs stacked along the channels, every BatchNorm one
BatchNorm over the K·C channels (so each member keeps its own batch statistics, and its running statistics are
views into the grouped ones), every linear layer one batched matrix product. Nothing else is shared: a member's loss
reaches only its own weights, so a member that diverges does not disturb the others, and the update, the records
and the files are the member's own trainer's, step for step as in a separate run. Results equal separate runs' to
float rounding (grouped kernels sum in another order; ``config.json`` names the partners, as
``trained_together_with``); over long runs the chaotic dynamics amplify that rounding, so long runs agree in their
statistics, not step by step.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from bnwd.empirical.trainer import Trainer

__all__ = ["GroupedBatchNorm2d", "GroupedConv2d", "GroupedLinear", "grouped_model", "train_together"]


def _same(layers: Sequence[nn.Module], *names: str) -> None:
    """``ValueError`` unless every layer has the first one's ``names`` attributes (shapes for tensors)."""
    for name in names:
        values = {tuple(v.shape) if torch.is_tensor(v) else v for v in (getattr(m, name) for m in layers)}
        if len(values) > 1:
            raise ValueError(
                f"the members' {type(layers[0]).__name__} layers differ in {name}: {sorted(map(str, values))}"
            )


def _cat(tensors: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if tensors[0] is None else torch.cat(tensors)


class GroupedConv2d(nn.Module):
    """The K members' corresponding ``Conv2d`` as one grouped convolution.

    Input ``(N, K·C_in, H, W)`` (member k's in channels ``k·C_in … (k+1)·C_in − 1``), output ``(N, K·C_out, H', W')``
    likewise. The weights are the members' own parameters, concatenated at each call (their gradients go back to
    them).
    """

    def __init__(self, convs: Sequence[nn.Conv2d]):
        super().__init__()
        _same(convs, "weight", "stride", "padding", "dilation", "groups", "padding_mode")
        if convs[0].padding_mode != "zeros":
            raise ValueError(f"only zero padding can be grouped, got {convs[0].padding_mode!r}")
        if len({m.bias is None for m in convs}) > 1:
            raise ValueError("the members' Conv2d layers differ in having a bias")
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.convs[0]
        weight = torch.cat([m.weight for m in self.convs])
        bias = _cat([m.bias for m in self.convs])
        return F.conv2d(x, weight, bias, first.stride, first.padding, first.dilation, first.groups * len(self.convs))


class GroupedBatchNorm2d(nn.Module):
    """The K members' corresponding ``BatchNorm2d`` as one over their K·C channels.

    Each channel is normalised by its own statistics, so each member by its own batch's. The running statistics
    live here, and each member's ``running_mean``/``running_var`` become views of their part (a member evaluated
    alone, checkpointed or loaded reads and writes them in place); each member counts its batches.
    """

    def __init__(self, norms: Sequence[nn.BatchNorm2d]):
        super().__init__()
        _same(norms, "num_features", "eps", "momentum", "affine", "track_running_stats")
        self.norms = nn.ModuleList(norms)
        first, size = norms[0], norms[0].num_features
        if first.track_running_stats:
            for name in ("running_mean", "running_var"):
                joined = torch.cat([getattr(m, name) for m in norms])
                self.register_buffer(name, joined)
                for k, m in enumerate(norms):
                    setattr(m, name, joined[k * size : (k + 1) * size])
        else:
            self.running_mean = self.running_var = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.norms[0]
        momentum = first.momentum
        use_batch = self.training or not first.track_running_stats
        if self.training and first.track_running_stats:
            for m in self.norms:
                m.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative average, as nn.BatchNorm2d does it
                momentum = 1.0 / float(first.num_batches_tracked)
        weight = _cat([m.weight for m in self.norms])
        bias = _cat([m.bias for m in self.norms])
        return F.batch_norm(x, self.running_mean, self.running_var, weight, bias, use_batch, momentum or 0.0, first.eps)


class GroupedLinear(nn.Module):
    """The K members' corresponding ``Linear`` as one batched matrix product.

    Input ``(N, K·in)`` (member k's features ``k·in … (k+1)·in − 1``), output ``(N, K·out)`` likewise.
    """

    def __init__(self, linears: Sequence[nn.Linear]):
        super().__init__()
        _same(linears, "weight")
        if len({m.bias is None for m in linears}) > 1:
            raise ValueError("the members' Linear layers differ in having a bias")
        self.linears = nn.ModuleList(linears)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, n = len(self.linears), x.shape[0]
        weight = torch.stack([m.weight for m in self.linears])  # (K, out, in)
        out = torch.bmm(x.reshape(n, k, -1).transpose(0, 1), weight.transpose(1, 2))  # (K, N, out)
        if self.linears[0].bias is not None:
            out = out + torch.stack([m.bias for m in self.linears])[:, None, :]
        return out.transpose(0, 1).reshape(n, -1)


_GROUPED = {nn.Conv2d: GroupedConv2d, nn.BatchNorm2d: GroupedBatchNorm2d, nn.Linear: GroupedLinear}


def grouped_model(members: Sequence[nn.Module]) -> nn.Module:
    """One module computing the forward pass of every member at once.

    Parameters
    ----------
    members : sequence of nn.Module, length K
        Models of one architecture (same class and sizes; weights, seeds and modes may differ) built from
        ``Conv2d``, ``BatchNorm2d`` and ``Linear`` layers and operations that act on each channel alone (activations,
        pooling, residual sums, flattening): :data:`empirical.nets.MODELS`.

    Returns
    -------
    nn.Module
        Mapping ``(N, K·C, H, W)`` — member k's inputs in channels ``k·C … (k+1)·C − 1`` — to ``(N, K·n_classes)``,
        member k's logits in columns ``k·n_classes …``. Its layers use the members' own parameters; the members'
        BatchNorm running statistics become views of its own.

    Raises
    ------
    ValueError
        For members of different classes or sizes, or with a layer holding weights that is none of the three.
    """
    if not members:
        raise ValueError("no members to group")
    if len({type(m) for m in members}) > 1:
        raise ValueError(
            f"members of different classes cannot be grouped: {sorted({type(m).__name__ for m in members})}"
        )
    grouped = copy.deepcopy(members[0])
    for name, module in list(grouped.named_modules()):
        kind = next((kind for kind in _GROUPED if type(module) is kind), None)
        if kind is not None:
            layers = [m.get_submodule(name) for m in members]
            parent, _, child = name.rpartition(".")
            setattr(grouped.get_submodule(parent), child, _GROUPED[kind](layers))
        elif any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
            raise ValueError(f"layer {name!r} ({type(module).__name__}) holds weights and cannot be grouped")
    return grouped


def _grouped_loss_and_grads(model: nn.Module, batches: list[list[tuple[torch.Tensor, torch.Tensor]]]):
    """Each member's mean cross-entropy, accuracy and gradients over its (ghost) batches, computed together.

    ``batches[k]`` are member k's (inputs, targets) parts, the same number of parts of the same sizes for every
    member. Returns the losses and accuracies, each shape (K,), on the device.
    """
    total = sum(y.shape[0] for _, y in batches[0])
    loss_sum, correct = 0.0, 0
    for parts in zip(*batches, strict=True):
        x = torch.cat([x for x, _ in parts], dim=1)  # (N, K·C, H, W)
        y = torch.stack([y for _, y in parts], dim=1)  # (N, K)
        logits = model(x).reshape(y.shape[0], len(parts), -1)  # (N, K, classes)
        # each member's mean over its part, weighted as the trainer weights ghost batches
        loss = F.cross_entropy(logits.permute(0, 2, 1), y, reduction="none").mean(0) * (y.shape[0] / total)
        loss.sum().backward()
        loss_sum = loss_sum + loss.detach()
        correct = correct + (logits.argmax(2) == y).sum(0)
    return loss_sum, correct / total


_BATCHING_KEY = ("batch_size", "full_batch")


def _too_large(group: Sequence[Trainer], error: Exception) -> str:
    """One line for a group whose step does not fit in the device's memory: what the device has and was asked."""
    device = group[0].data.train_x.device
    asked = " ".join(str(error).split())[:160]  # torch's message says how much it tried to allocate
    line = f"{len(group)} runs trained together do not fit in the memory of {device} ({asked}"
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        line += f"; {free / 2**30:.1f} of {total / 2**30:.1f} GiB free"
    return line + "): train fewer together (--together), or use a smaller batch"


def train_together(trainers: Sequence[Trainer], progress: bool = True) -> list[dict]:
    """Train the ``trainers``' runs together (see the module); return each one's summary.

    Every step, the members at the earliest step (all of them, unless some resumed from a later checkpoint than
    others) compute their gradients in one grouped pass; each then takes its own update, record and checkpoint.
    A member that finishes or diverges leaves the group.

    Raises
    ------
    ValueError
        For trainers whose models cannot be grouped (:func:`grouped_model`), whose batches differ in size (batch
        size, full batch, number of training samples), whose loss is not the cross-entropy, or whose ``out`` is
        shared.
    """
    if len({t.out.resolve() for t in trainers}) < len(trainers):
        raise ValueError("two members write to the same folder")
    for key in _BATCHING_KEY:
        if len({getattr(t.config, key) for t in trainers}) > 1:
            raise ValueError(f"members with different {key} cannot take their steps together")
    if len({t.data.n_train for t in trainers}) > 1:
        raise ValueError("members with different numbers of training samples cannot take their steps together")
    if any(t.loss_fn is not F.cross_entropy for t in trainers):
        raise ValueError("training together computes the cross-entropy: a member has another loss_fn")
    # one grouped model at a time: building one points the members' running statistics at its buffers
    grouped, members = None, ()
    for t in trainers:
        t._start()
        # the run's numbers depend on its partners to rounding: config.json says who they were
        t.monitor.run_config["trained_together_with"] = [str(o.out) for o in trainers if o is not t]
    remaining = sum(max(t.config.steps - t.step, 0) for t in trainers)
    bar = tqdm(total=remaining, disable=not progress, desc=f"train ×{len(trainers)}", unit="step")
    while active := [t for t in trainers if not t.finished]:
        step = min(t.step for t in active)
        group = [t for t in active if t.step == step]
        if tuple(group) != members:
            grouped, members = grouped_model([t.model for t in group]).train(True), tuple(group)
        begun = [t._begin_step() for t in group]
        for t in group:
            t.optimizer.zero_grad(set_to_none=False)
        try:
            losses, accs = _grouped_loss_and_grads(grouped, [batches for batches, _ in begun])
        except torch.OutOfMemoryError as error:
            raise ValueError(_too_large(group, error)) from None
        for k, (t, (batches, measured)) in enumerate(zip(group, begun, strict=True)):
            t._end_step(batches, losses[k], accs[k], measured, None)
        bar.update(len(group))
    bar.close()
    return [t._finish() for t in trainers]
