"""Discrete guide sites summed out exactly, as ``TraceEnum_ELBO`` sums them.

A site marked ``infer={"enumerate": "parallel"}`` (by hand or by ``config_enumerate``) in a
function wrapped with :func:`~pixyz_pyro.infer.from_pyro`, or a variable listed in
:func:`~pixyz_pyro.infer.enumerated`, is not drawn inside an expectation: the expectation
runs over every value of its support, weighted by its probability,

.. math::

    \\mathbb{E}_{q(y, z|x)}[f] = \\sum_{y} q(y|x)\\,\\mathbb{E}_{q(z|x, y)}[f(x, y, z)],

which is what ``TraceEnum_ELBO`` computes for a guide-side enumerated site: the same value
and the same gradient (the weights :math:`q(y|x)` carry the classifier's gradient, with no
score-function term).

The guide runs once under Pyro's own ``EnumMessenger`` (so its other draws are Pyro's
draws, of shape ``(K, B, ...)``), and the :math:`K` values of the enumerated dims are
folded into the batch, enumeration-major: ``(K, B, ...) -> (K * B, ...)``, with every
input repeated ``K`` times.  The body is evaluated once on the ``K * B`` rows, multiplied
by the weights and summed over the ``K`` values (the ``Expectation`` handler of
:mod:`pixyz_pyro.loss.evaluate`).  The scoring of the
guide at the folded values reads the very same trace (:func:`folded_log_prob`).

Scope: the enumerated sites and the sites that depend on them sit in the data plate at
dim ``-1`` (one value per row, as everywhere in pixyz_pyro); other plates get a
:class:`~pixyz_pyro.errors.LossError`.  The enumeration dims start at
``-1 - max_plate_nesting`` (``from_pyro(..., max_plate_nesting=...)``), as in
``TraceEnum_ELBO(max_plate_nesting=...)``.
"""
import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from pyro.distributions.util import scale_and_mask

from ..dist.distribution import Distribution, Draw
from ..errors import LossError, VariableError
from .translate import site_plan


class EnumLayout(NamedTuple):
    """The enumeration dims of one trace, left of the data plate."""

    shape: Tuple[int, ...]  # the sizes of dims (first enum dim ... -2), 1 where unused
    rows: int  # the data plate's size

    @property
    def k(self) -> int:
        return math.prod(self.shape)


def enumerated_sites(trace) -> List[str]:
    """The sample sites that Pyro's ``EnumMessenger`` enumerated in ``trace``."""
    return [n for n, s in trace.nodes.items()
            if s["type"] == "sample" and s["infer"].get("_enumerate_dim") is not None]


def _batch_part(site) -> Tuple[int, ...]:
    v = site["value"]
    return tuple(v.shape[:v.dim() - site["fn"].event_dim])


def layout(trace, names, frame, rows: Optional[int], who: str) -> EnumLayout:
    """The :class:`EnumLayout` of ``trace`` (``names``: its sample sites), checking the
    scope of the module docstring."""
    enum = enumerated_sites(trace)
    sampled = [n for n in enum if trace.nodes[n]["infer"].get("num_samples") is not None]
    if sampled:
        raise LossError(f"{who}: the site \"{sampled[0]}\" is enumerated with num_samples "
                        f"(multiple sampling), which the direct executor does not sum; "
                        f"enumerate its whole support, or train with TraceEnum_ELBO")
    first = min(trace.nodes[n]["infer"]["_enumerate_dim"] for n in enum)
    for n in names:
        site = trace.nodes[n]
        plates = [f for f in site["cond_indep_stack"] if f.vectorized]
        if any(frame is None or f.name != frame.name or f.dim != -1 for f in plates):
            found = sorted({(f.name, f.dim) for f in plates})
            raise LossError(f"{who}: enumerating {enum} needs every site in one data plate "
                            f"at dim -1; the site \"{n}\" is in the plates {found}")
    size = frame.size if frame is not None and frame.size > 0 else rows
    shape = [1] * (-1 - first)
    for n in names:
        site = trace.nodes[n]
        batch = _batch_part(site)
        if not site["cond_indep_stack"]:
            if n in enum:
                raise LossError(f"{who}: the enumerated site \"{n}\" is outside the data "
                                f"plate; enumeration sums out sites of the data plate")
            continue  # a global site: as in Pyro, it cannot depend on the plate's sites
        lead = batch[:-1]
        for i, d in enumerate(lead[::-1]):
            if i < len(shape) and d > 1:
                shape[-1 - i] = max(shape[-1 - i], d)
    return EnumLayout(tuple(shape), size or 1)


def fold_site_value(t: torch.Tensor, event_dim: int, lay: EnumLayout) -> torch.Tensor:
    """A site value of batch shape ``(..enum.., B)`` (or broadcastable) as ``(K * B, *event)``."""
    event = t.shape[t.dim() - event_dim:]
    full = len(lay.shape) + 1 + event_dim
    t = t.reshape((1,) * (full - t.dim()) + tuple(t.shape))
    return t.expand(*lay.shape, lay.rows, *event).reshape(lay.k * lay.rows, *event)


def fold_inputs(values: Dict, lay: EnumLayout) -> Dict:
    """Every batched tensor of ``values`` repeated ``K`` times, enumeration-major."""
    out = dict(values)
    for k, v in values.items():
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == lay.rows:
            out[k] = v.unsqueeze(0).expand(lay.k, *v.shape).reshape(lay.k * v.shape[0],
                                                                    *v.shape[1:])
    return out


def _folded_rows(lp: torch.Tensor, site, frame, lay: EnumLayout) -> torch.Tensor:
    inside = frame is not None and any(f.name == frame.name for f in site["cond_indep_stack"])
    if not inside:  # a global term, spread over the rows (see site_terms)
        return (lp.sum() / lay.rows).expand(lay.k * lay.rows)
    full = len(lay.shape) + 1
    lp = lp.reshape((1,) * (full - lp.dim()) + tuple(lp.shape))
    return lp.expand(*lay.shape, lay.rows).reshape(-1)


def log_weight(trace, frame, lay: EnumLayout) -> torch.Tensor:
    """:math:`\\log q(e|x)` per folded row: the enumerated sites' log-probabilities with
    their masks, not their scales (as Pyro's Dice factors take them)."""
    total = None
    for n in enumerated_sites(trace):
        site = trace.nodes[n]
        lp = scale_and_mask(site["fn"].log_prob(site["value"]), 1.0, site["mask"])
        lp = _folded_rows(lp, site, frame, lay)
        total = lp if total is None else total + lp
    if total is None:
        raise ValueError("log_weight: the trace has no enumerated site")
    return total


def folded_log_prob(trace, names, frame, lay: EnumLayout,
                    like: Optional[torch.Tensor]) -> torch.Tensor:
    """The log-density of the sites ``names`` per folded row (scales and masks as Pyro)."""
    from .site_terms import site_log_prob
    dtype, device = (like.dtype, like.device) if like is not None else \
        (torch.get_default_dtype(), None)
    total = torch.zeros((), dtype=dtype, device=device).expand(lay.k * lay.rows)
    for n in names:
        site = trace.nodes[n]
        lp = torch.as_tensor(site_log_prob(site))
        total = total + _folded_rows(lp, site, frame, lay)
    return total



# --- pixyz_pyro's own distributions: enumerated(q, ["y"]) --------------------------------------
def _enumerable(f, v: str, values, ctx, rows: int, who: str):
    """The support of ``f``'s variable ``v`` as ``(K, rows, *event)``."""
    d = f.pyro_dist(values, ctx)
    if not getattr(d, "has_enumerate_support", False):
        raise LossError(f"{who}: {f.prob_text} is a {type(d).__name__}, which has no finite "
                        f"support to enumerate")
    support = d.enumerate_support(expand=True)
    batch = tuple(d.batch_shape)
    if batch not in ((), (rows,)):
        raise LossError(f"{who}: {f.prob_text} has batch shape {batch} for {rows} rows; only a "
                        f"variable with one discrete value per row (a Categorical) can be "
                        f"enumerated")
    if not batch:
        support = support.unsqueeze(1).expand(support.shape[0], rows, *support.shape[1:])
    return support


class EnumeratedDistribution(Distribution):
    """``q`` with the variables ``enumerated_var`` summed out inside an expectation (see
    :func:`enumerated`, which builds it).

    Parameters
    ----------
    q : Distribution
        The distribution (a factor or a joint of factors).
    var : sequence of str
        Its discrete variables to sum out, each defined alone by one factor that depends
        on no later variable.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Categorical
    >>> q = EnumeratedDistribution(Categorical(probs=torch.tensor([0.2, 0.8]), var=["y"]),
    ...                            ["y"])
    >>> q.enumerated_var, q.prob_text
    (('y',), 'p(y)')
    """

    enumerates = True

    def __init__(self, q: Distribution, var: Sequence[str]):
        var = [var] if isinstance(var, str) else list(var)
        super().__init__(q.var, q.cond_var, q.name)
        self.q = q
        unknown = [v for v in var if v not in q.var]
        if not var or unknown:
            raise VariableError(f"enumerated({q.prob_text}, {var}): name variables of "
                                f"{q.prob_text}; its variables are {q.var}")
        self.enumerated_var = tuple(var)
        sites = site_plan(q)
        self._enum = [s.dist for s in sites if set(s.dist.var) & set(var)]
        self._rest = [s.dist for s in sites if not set(s.dist.var) & set(var)]
        for f in self._enum:
            late = [v for v in f.cond_var if v in q.var and v not in var]
            if len(f.var) != 1 or late:
                why = (f"it depends on {late}, which are drawn after it" if late else
                       f"it defines {f.var} together")
                raise VariableError(f"enumerated({q.prob_text}, {var}): {f.prob_text} cannot "
                                    f"be enumerated: {why}")

    @property
    def has_reparam(self) -> bool:
        return all(f.has_reparam for f in self._rest)

    @property
    def input_var(self) -> List[str]:
        return self.q.input_var

    @property
    def distribution_name(self) -> str:
        return self.q.distribution_name

    @property
    def prob_factorized_text(self) -> str:
        return self.q.prob_factorized_text

    def _sample_values(self, values, ctx, reparam, batch_n):
        return self.q._sample_values(values, ctx, reparam, batch_n)

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        return self.q._log_prob_values(values, ctx, sum_features, feature_dims)

    def _draw(self, values, ctx, reparam, batch_n) -> Draw:
        rows = batch_n or next((t.shape[0] for t in values.values()
                                if isinstance(t, torch.Tensor) and t.dim() > 0), 1)
        cur, log_w, k = dict(values), None, 1
        for f in self._enum:  # each enumerated variable folds the rows once more
            v = f.var[0]
            support = _enumerable(f, v, cur, ctx, rows, self.prob_text)
            n = support.shape[0]
            cur = {key: (t.unsqueeze(0).expand(n, *t.shape).reshape(n * rows, *t.shape[1:])
                         if isinstance(t, torch.Tensor) and t.dim() > 0 and t.shape[0] == rows
                         else t) for key, t in cur.items()}
            cur[v] = support.reshape(n * rows, *support.shape[2:])
            lw = f._log_prob_values(cur, ctx)
            log_w = lw if log_w is None else \
                log_w.unsqueeze(0).expand(n, *log_w.shape).reshape(-1) + lw
            rows, k = n * rows, k * n
        drawn = {v: cur[v] for v in self.enumerated_var}
        new = {}
        if self._rest:  # the other variables, drawn once per folded row (a joint skips
            # the factors whose values are given)
            new = {k: t for k, t in self.q._sample_values(cur, ctx, reparam, rows).items()
                   if k not in drawn}
        inputs = {key: t for key, t in cur.items() if key not in drawn}
        return Draw(inputs, {**drawn, **new}, log_w, k)


def enumerated(q: Distribution, var: Sequence[str]) -> EnumeratedDistribution:
    """``q`` whose discrete variables ``var`` are summed out exactly inside every
    expectation over it, as ``TraceEnum_ELBO`` sums out a guide's enumerated sites:

    .. math::

        \\mathbb{E}_{q(y|x)q(z|x,y)}[f] = \\sum_{y} q(y|x)\\,\\mathbb{E}_{q(z|x,y)}[f]

    Sampling and scoring are ``q``'s own; ``to_pyro`` of it marks ``var`` for
    enumeration, and ``SVILoss`` maps an ``ELBO`` over it to ``TraceEnum_ELBO``.

    Parameters
    ----------
    q : Distribution
        The distribution whose variables ``var`` are summed out.
    var : sequence of str
        Discrete variables of ``q`` (finite support), each defined alone by one factor.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Categorical, Normal
    >>> from pixyz_pyro.loss import ELBO
    >>> q_y = Categorical(probs=torch.tensor([0.2, 0.8]), var=["y"], name="q")
    >>> p_y = Categorical(probs=torch.tensor([0.5, 0.5]), var=["y"], name="p")
    >>> q = enumerated(q_y, ["y"])
    >>> ELBO(p_y, q).eval()  # -KL[q || p], exactly: no draw at all
    tensor([-0.1927])
    """
    return EnumeratedDistribution(q, var)


@site_plan.register
def _(dist: EnumeratedDistribution):
    return site_plan(dist.q)  # to_pyro marks dist.enumerated_var for enumeration
