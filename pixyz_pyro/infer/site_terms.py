"""The log-density of a Pyro trace, one value per row of its data plate.

The rule (also in ``docs/pyro.md``): for a trace with a data plate of ``B`` rows,

.. math::

    \\ell_b = \\sum_{s \\,\\in\\, \\text{plate}} \\ell_{s,b}
    + \\frac{1}{B} \\sum_{s \\,\\notin\\, \\text{plate}} \\ell_s

Each counted site's ``log_prob`` is taken with its ``poutine.scale`` and mask, as
Pyro's ELBOs take it; a site inside the data plate is summed over every other dim and
gives one value per row, and a global site (outside the data plate) is summed and
spread evenly over the ``B`` rows.  So ``ell.sum()`` is exactly the trace's
``log_prob_sum()`` (the number Pyro's ``Trace_ELBO`` uses) and ``ell.mean()`` is that
number over ``B``.

The data plate is the plate named ``plate``; by default the first plate whose full size is
the number of rows of the inputs, else the first plate at dim ``-1``.  A trace without one
has ``B`` = the rows of the inputs (1 without a tensor input).
"""
from typing import Any, Iterable, List, Optional

import torch
from pyro.distributions.util import scale_and_mask
from pyro.poutine.indep_messenger import CondIndepStackFrame
from pyro.poutine.runtime import Message
from pyro.poutine.subsample_messenger import _Subsample
from pyro.poutine.trace_struct import Trace


def sample_sites(trace: Trace) -> List[str]:
    """The names of the trace's sample sites, without the plates' subsample sites."""
    return [n for n, s in trace.nodes.items()
            if s["type"] == "sample" and not isinstance(s["fn"], _Subsample)]


def subsample_sites(trace: Trace) -> List[str]:
    """The names of the subsampled plates (whose indices a model replays)."""
    return [n for n, s in trace.nodes.items()
            if s["type"] == "sample" and isinstance(s["fn"], _Subsample)]


def find_data_plate(trace: Trace, plate: Optional[str], n_rows: Optional[int]
                    ) -> Optional[CondIndepStackFrame]:
    """The data plate's frame (``name``, ``dim``, ``size``), or ``None``."""
    frames: List[CondIndepStackFrame] = []
    for n in sample_sites(trace):
        for f in trace.nodes[n]["cond_indep_stack"]:
            if f.vectorized and all(f.name != g.name for g in frames):
                frames.append(f)
    if plate is not None:
        return next((f for f in frames if f.name == plate), None)
    if n_rows is not None:
        for f in frames:
            if (f.full_size if f.full_size and f.full_size > 0 else f.size) == n_rows:
                return f
    return next((f for f in frames if f.dim == -1), None)


def site_log_prob(site: Message) -> torch.Tensor:
    """``log_prob`` of one site, with its scale and mask (as Pyro's ELBOs take it)."""
    fn: Any = site["fn"]  # a sample site's fn is its distribution (Message types a callable)
    return scale_and_mask(fn.log_prob(site["value"]), site["scale"], site["mask"])


def per_row_log_prob(trace: Trace, names: Iterable[str], frame: Optional[CondIndepStackFrame],
                     n_rows: Optional[int],
                     like: Optional[torch.Tensor] = None) -> torch.Tensor:
    """:math:`\\ell_b` of the sites ``names`` of ``trace`` (see the module docstring)."""
    local, glob = [], None
    for n in names:
        site = trace.nodes[n]
        lp = site_log_prob(site)
        if not isinstance(lp, torch.Tensor):
            lp = torch.as_tensor(lp)
        dim = frame.dim if frame is not None and any(f.name == frame.name for f in
                                                     site["cond_indep_stack"]) else None
        if dim is not None and lp.dim() >= -dim:
            local.append(lp.movedim(dim, 0))
        else:
            lp = lp.sum()
            glob = lp if glob is None else glob + lp
    size = frame.size if frame is not None and frame.size > 0 else None  # -1: broadcast
    rows = size or \
        max((lp.shape[0] for lp in local), default=None) or n_rows or 1
    total = None
    for lp in local:
        lp = lp.expand(rows, *lp.shape[1:]).reshape(rows, -1).sum(1)
        total = lp if total is None else total + lp
    if total is None:
        ref = glob if glob is not None else like
        zero = torch.zeros((), dtype=getattr(ref, "dtype", None),
                           device=getattr(ref, "device", None))
        total = zero.expand(rows)
    if glob is not None:
        total = total + glob / rows
    return total
