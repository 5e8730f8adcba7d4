"""Where to measure the effective sharpness during training: the last upward crossing of η̃·s̃ = 2(1−ηλ) before
each destabilisation located to one step, at the cost of a few measurements per period.

η̃ is known at every step for free; s̃ costs a Lanczos run. Between destabilisations s̃ drifts slowly while η̃
grows by (1−ηλ)⁻² per step, so the product predicted from the last measured s̃, ``η̃_t·s̃_last``, says when the
threshold will be crossed. :class:`CrossingSearch` measures

* every ``every`` steps (so that no stretch goes unmeasured for longer), and
* when the predicted side of the threshold differs from the last measured side: the crossing is due.

s̃ drifts (it falls after a jump, grows before the next) and, where gradient descent oscillates across the valley,
alternates from step to step, so a prediction can be early or late, and the product can cross, dip back and cross
again. Early: a measurement that finds no change of side doubles the wait before the next predicted one, up to
``every``, so that a product hovering at the threshold costs ``log₂ every`` measurements, not one per step. Late,
or crossed again: between destabilisations ρ only decays, so when ρ rises one is under way, and the step before the
rise, the destabilisation's, is measured from the ring buffer (:meth:`CrossingSearch.look_back`); its crossing is
searched for backwards from there. In minibatch SGD ρ also rises through noise; looks back that find nothing new
double their own wait in the same way. A measurement that finds a change of side resets both waits.

A crossing bracketed by a measurement below at ``lo`` and one above at ``hi`` is located by
:func:`locate_crossing`: it steps back from ``hi`` by 1, 2, 4, … until it finds the product below the threshold,
then bisects; the result is the latest upward crossing in the bracket, up to dips narrower than the stride, in
about ``2·log₂(hi − lo)`` measurements at past steps, from weights kept in a ring buffer of the last ``every``
steps. Nothing here touches the model; the trainer supplies the measurements.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["CrossingSearch", "locate_crossing"]


class CrossingSearch:
    """The measurement schedule of η̃·s̃ around a threshold (see the module docstring).

    Parameters
    ----------
    threshold : float
        2(1−ηλ).
    every : int
        The longest stretch without a measurement, and the longest wait after a wrong prediction (≥ 1).
    """

    def __init__(self, threshold: float, every: int) -> None:
        if int(every) != every or every < 1:
            raise ValueError(f"CrossingSearch: every must be a positive integer, got {every!r}")
        self.threshold, self.every = float(threshold), int(every)
        self.last_step: int | None = None
        self.last_above: bool | None = None
        self.last_below: int | None = None
        self.eff_sharpness: float | None = None
        self.wait = self.look_back_wait = 1
        self.last_look_back = -1

    def _predicted_above(self, elr: float) -> bool:
        return bool(elr * self.eff_sharpness >= self.threshold)

    def due(self, step: int, elr: float) -> bool:
        """Whether to measure s̃ at ``step``, where η̃ = ``elr`` (before the step's update)."""
        if self.last_step is None:
            return True
        waited = step - self.last_step
        return waited >= self.every or (self._predicted_above(elr) != self.last_above and waited >= self.wait)

    def look_back(self, step: int, rising: bool) -> bool:
        """Whether to measure the step before ``step`` (from the ring buffer): ρ rose on it (``rising``), it was
        not measured yet, and the wait after fruitless looks back is over."""
        return (
            rising
            and self.last_step is not None
            and step - 1 > self.last_step
            and step - 1 >= self.last_look_back + self.look_back_wait
        )

    def update(self, step: int, elr: float, eff_sharpness: float, looked_back: bool = False) -> tuple[int, int] | None:
        """Take the measurement s̃ = ``eff_sharpness`` at ``step`` (``looked_back``: on :meth:`look_back`'s word).

        Returns
        -------
        (lo, hi) or None
            A bracket of the crossing to locate: the previous measurement below the threshold and this one above;
            on a look back that finds the product above, from the last measurement below (the crossing before the
            destabilisation may have come after the one already located). None otherwise.
        """
        above = bool(elr * eff_sharpness >= self.threshold)
        bracket = None
        if self.last_step is not None:
            if above and self.last_below is not None and (not self.last_above or looked_back):
                bracket = (self.last_below, step)
            if above != self.last_above:
                self.wait = self.look_back_wait = 1
            elif looked_back:
                self.look_back_wait = min(2 * self.look_back_wait, self.every)
            elif step - self.last_step < self.every:  # the crossing was due and did not come
                self.wait = min(2 * self.wait, self.every)
        if looked_back:
            self.last_look_back = step
        if not above:
            self.last_below = step
        self.last_step, self.last_above, self.eff_sharpness = step, above, eff_sharpness
        return bracket


def locate_crossing(lo: int, hi: int, product_at: Callable[[int], float | None], threshold: float) -> tuple[int, int]:
    """The latest upward crossing of ``threshold`` in ``(lo, hi]`` (below at ``lo``, above at ``hi``), to one step.

    Steps back from ``hi`` by 1, 2, 4, … until the product is below the threshold, then bisects between that step
    and the nearest step above it found.

    Parameters
    ----------
    lo, hi : int
        Steps of the bracketing measurements, ``lo < hi``.
    product_at : callable
        ``product_at(step)`` measures η̃·s̃ at a past step; None when that step is no longer available (the ring
        buffer has moved on), which ends the search there.
    threshold : float

    Returns
    -------
    (below, above) : tuple of int
        The narrowest bracket found: ``above − below == 1`` unless a step was unavailable.
    """
    above, stride = hi, 1
    while above - stride > lo:
        product = product_at(above - stride)
        if product is None:
            return lo, above
        if product < threshold:
            lo = above - stride
            break
        above, stride = above - stride, 2 * stride
    while above - lo > 1:
        mid = (lo + above) // 2
        product = product_at(mid)
        if product is None:
            break
        if product >= threshold:
            above = mid
        else:
            lo = mid
    return lo, above
