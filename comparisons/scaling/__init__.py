"""Scaling curves: how the step time and memory grow with the work, for pixyz_pyro
against hand-written PyTorch and Pyro, measured together (``python -m
comparisons.scaling``; see :mod:`.cli`).

One concept per module: :mod:`.curve` (what a curve is), the four curves
(:mod:`.factors`, :mod:`.batch`, :mod:`.particles`, :mod:`.sequence`), :mod:`.runner`
(one point: build, check, time, memory), :mod:`.memory`, :mod:`.fit` (log-log slopes),
:mod:`.report` and :mod:`.plots` (outputs).  :func:`measure` is the small per-factor
overhead table of :mod:`comparisons.extras` (:mod:`.overhead`).
"""
from .overhead import measure

__all__ = ["measure"]
