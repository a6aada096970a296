"""A family: how parameters become one ``pyro.distributions`` object.

A :class:`Family` is one row of the table in :mod:`pixyz_pyro.dist.families`: the name,
the Pyro class, the parameter names, whether it can be reparameterised, and the checks
of its support.  :func:`lift` turns a row into a :class:`FactorDistribution` subclass,
so users lift any other Pyro distribution in one line:

>>> import pyro.distributions as pd
>>> from pixyz_pyro.dist import lift
>>> StudentT = lift(pd.StudentT, params=("df", "loc", "scale"))
>>> p = StudentT(df=3., loc=0., scale=1., var=["x"])
>>> round(float(p.get_log_prob({"x": torch.zeros(1, 1)})), 4)
-1.0009
"""
from typing import Callable, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple, Type, Union

import pyro.distributions as pd
import torch
from pyro.distributions import TorchDistribution, constraints

from .fused import (
    FUSED_MIN,
    BernoulliLogProb,
    NormalLogProb,
    normal_log_density,
    normal_neg_log_density,
)
from .shapes import broadcast_shapes

_LOG_PROB = Callable[[object, torch.Tensor], torch.Tensor]
_Params = Mapping[str, object]


def _default_log_prob(d, x: torch.Tensor) -> torch.Tensor:
    return d.log_prob(x)


# --- closed forms: the same numbers as the pyro class, without building it ------------------
# The hot path of the direct executor computes log-densities, reparameterised draws and
# KL divergences of the common families straight from their parameters.  Building a
# ``pyro.distributions`` object costs ``broadcast_all`` and bookkeeping on every step; the
# formulas below are the pyro/torch methods' own, the Normal's log-density and KL
# rewritten in fewer kernels, so the values agree to float32 rounding (tests check it,
# and that the rewritten ones are at least as close to float64).  Each returns ``None``
# where it does not apply (a parameter that is not a tensor), and the caller falls back
# to the pyro object.


def _fused_normal(x: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> bool:
    """Whether a Normal score is one autograd node: a batch of images (``FUSED_MIN``
    elements, ``loc`` of the value's shape, one dtype), eagerly."""
    return x.numel() >= FUSED_MIN and loc.shape == x.shape and scale.dim() <= x.dim() and \
        x.dtype == loc.dtype == scale.dtype and \
        broadcast_shapes(scale.shape, x.shape) == x.shape and \
        not torch.compiler.is_compiling()


def _normal_log_prob(params: _Params, x: torch.Tensor) -> Optional[torch.Tensor]:
    """``Normal.log_prob``: :math:`-\\frac{(x - \\mu)^2}{2\\sigma^2} - \\log\\sigma
    - \\log\\sqrt{2\\pi}`; on a batch of images (``FUSED_MIN`` elements, ``loc`` of the
    value's shape) as one autograd node with the same value
    (:class:`~pixyz_pyro.dist.fused.NormalLogProb`)."""
    loc, scale = params.get("loc"), params.get("scale")
    if not isinstance(loc, torch.Tensor) or not isinstance(scale, torch.Tensor):
        return None
    if _fused_normal(x, loc, scale):  # a batch of images: one autograd node
        return NormalLogProb.apply(x, loc, scale)
    return normal_log_density(x, loc, scale)


def _normal_nll(params: _Params, x: torch.Tensor) -> Optional[torch.Tensor]:
    """``-Normal.log_prob`` without a negation (:func:`normal_neg_log_density`, the same
    bits); ``None`` where the score is one fused node."""
    loc, scale = params.get("loc"), params.get("scale")
    if not isinstance(loc, torch.Tensor) or not isinstance(scale, torch.Tensor) or \
            _fused_normal(x, loc, scale):
        return None
    return normal_neg_log_density(x, loc, scale)


def _normal_rsample(params: _Params, sample_shape: Tuple[int, ...]) -> Optional[torch.Tensor]:
    """``Normal.rsample``: :math:`\\mu + \\epsilon\\sigma`, with the same draw of
    :math:`\\epsilon` (``empty(shape).normal_()``)."""
    loc, scale = params.get("loc"), params.get("scale")
    if not isinstance(loc, torch.Tensor) or not isinstance(scale, torch.Tensor):
        return None
    same = loc.shape == scale.shape
    if same and not sample_shape:
        # empty_like(loc, contiguous).normal_(): the same draw as below, without parsing
        # a shape, a dtype and a device (1.5 us less on a time step's 16 x 16 tensors)
        eps = torch.randn_like(loc, memory_format=torch.contiguous_format)
        return loc + eps * scale
    batch = loc.shape if same else broadcast_shapes(loc.shape, scale.shape)
    shape = tuple(sample_shape) + tuple(batch) if sample_shape else batch
    # torch.randn is ATen's empty(shape).normal_(): the same draw, one dispatch.
    eps = torch.randn(shape, dtype=loc.dtype, device=loc.device)
    return loc + eps * scale


#: dtype -> machine epsilon, a constant read at import (``torch.finfo`` builds an object per
#: call).  A plain dict, which ``torch.compile`` traces through (a MappingProxyType breaks it).
_EPS: Dict[torch.dtype, float] = {
    dt: torch.finfo(dt).eps for dt in (torch.float16, torch.bfloat16, torch.float32,
                                       torch.float64)}


def _bernoulli_log_prob(params: _Params, x: torch.Tensor) -> Optional[torch.Tensor]:
    """``Bernoulli.log_prob`` for values in :math:`[0, 1]`: Pyro's expression,
    :math:`-\\mathrm{BCE}_{\\mathrm{logits}}(\\mathrm{logit}(\\pi_c), x)` with
    :math:`\\pi_c = \\mathrm{clamp}(\\pi, \\epsilon, 1 - \\epsilon)`.

    Pyro forms the logit from ``probs`` in four elementwise passes (clamp, two logarithms,
    a difference); ``torch.logit(probs, eps)`` is the same clamp and logit in one kernel,
    with the same zero gradient where the clamp is active, so a step costs about half of
    ``binary_cross_entropy`` on the probabilities (which would also raise on NaN, where
    this returns NaN for the NaN guard).

    On a batch of images (:data:`~pixyz_pyro.dist.fused.FUSED_MIN` elements) the score is
    one autograd node (:class:`~pixyz_pyro.dist.fused.BernoulliLogProb`) that writes the
    same function out, :math:`x \\log \\pi_c + (1 - x) \\log(1 - \\pi_c)`, in six
    kernels: a third faster than the logit form there, accurate elementwise where the logit
    form cancels (a background pixel's :math:`\\log(1 - \\pi_c)`), and equal to it to
    float32 rounding; it keeps no batch-sized logits alive until backward.  On a small
    tensor (a step of a sequence model) the two kernels above cost less than a Python node.

    Under ``torch.compile`` the written-out form is used at every size: Inductor fuses it
    into one loop with two logarithms and a backward without any, where the kernels above
    would cost three more transcendental passes (0.56 ms against 0.92 ms forward and
    backward for a 128 x 784 batch on one CPU thread).
    """
    return _bernoulli_score(params, x, False)


def _bernoulli_nll(params: _Params, x: torch.Tensor) -> Optional[torch.Tensor]:
    """``-Bernoulli.log_prob``: the binary cross-entropy with logits of
    :func:`_bernoulli_log_prob` without its negation (the same bits); ``None`` where the
    score is one fused node or is compiled."""
    return _bernoulli_score(params, x, True)


def _bernoulli_score(params: _Params, x: torch.Tensor, negate: bool) -> Optional[torch.Tensor]:
    probs = params.get("probs")
    if isinstance(probs, torch.Tensor):
        if x.dtype != probs.dtype:
            return None
        eps = _EPS.get(probs.dtype)
        if eps is None:  # not a floating dtype: Pyro's object gives the error
            return None
        if torch.compiler.is_compiling():
            if negate:
                return None
            clamped = probs.clamp(eps, 1 - eps)
            return x * clamped.log() + (1 - x) * torch.log1p(-clamped)
        same = probs.shape == x.shape
        if same and probs.numel() >= FUSED_MIN:  # one autograd node
            return None if negate else BernoulliLogProb.apply(probs, x, eps)
        logits = torch.logit(probs, eps)
    else:
        given = params.get("logits")
        if not isinstance(given, torch.Tensor):
            return None
        logits = given
        same = logits.shape == x.shape
    if not same:
        logits, x = torch.broadcast_tensors(logits, x)
    # F.binary_cross_entropy_with_logits(..., reduction="none") without its Python wrapper
    # (the shapes are equal here): the same kernel, weight and pos_weight None, reduction 0.
    nll = torch.binary_cross_entropy_with_logits(logits, x, None, None, 0)
    return nll if negate else -nll


def _kl_normal_normal(p: _Params, q: _Params) -> Optional[torch.Tensor]:
    """``kl_divergence(Normal, Normal)``, elementwise:

    .. math::

        \\frac12 r^2 + \\frac12 t^2 - \\frac12 - \\log r, \\qquad
        r = \\sigma_p / \\sigma_q, \\quad t = (\\mu_p - \\mu_q) / \\sigma_q.

    torch writes it :math:`\\frac12(r^2 + t^2 - 1 - \\log r^2)` in ten kernels; the two
    squares folded into ``addcmul`` and :math:`\\log r` for :math:`\\frac12 \\log r^2`
    make it seven, forward and backward: 7-8 us less per KL on 16 x 16 tensors, which a
    series pays at every step.  It is also closer to the exact value: against float64, the
    largest error of a 4096 x 8 batch's sums is 0.8e-6 relative instead of 4.5e-6
    (``tests/test_family_closed_forms.py``).
    """
    p_loc, p_scale, q_loc, q_scale = p.get("loc"), p.get("scale"), q.get("loc"), q.get("scale")
    if not (isinstance(p_loc, torch.Tensor) and isinstance(p_scale, torch.Tensor) and
            isinstance(q_loc, torch.Tensor) and isinstance(q_scale, torch.Tensor)):
        return None
    r = p_scale / q_scale
    t = (p_loc - q_loc) / q_scale
    half = r.new_full((), -0.5)
    return torch.addcmul(torch.addcmul(half, r, r, value=0.5), t, t, value=0.5) - r.log()


class Numerics(NamedTuple):
    """The closed forms one family uses on the direct executor's hot path (``None``: the
    ``pyro.distributions`` object's own method)."""

    log_prob: Optional[Callable[[_Params, torch.Tensor], Optional[torch.Tensor]]] = None
    rsample: Optional[Callable[[_Params, Tuple[int, ...]], Optional[torch.Tensor]]] = None
    #: ``-log_prob`` computed without a negation, the same bits (a loss that subtracts a
    #: log-likelihood adds it: one kernel fewer forward and backward).
    nll: Optional[Callable[[_Params, torch.Tensor], Optional[torch.Tensor]]] = None


#: The backend table: pyro class -> its closed forms.  Every entry is tested against the
#: pyro class (``tests/test_family_closed_forms.py``).
NUMERICS: Dict[type, Numerics] = {
    pd.Normal: Numerics(_normal_log_prob, _normal_rsample, _normal_nll),
    pd.Bernoulli: Numerics(_bernoulli_log_prob, None, _bernoulli_nll),
}
#: No closed form: every method of the pyro object.
PYRO_NUMERICS = Numerics()
#: (pyro class of p, pyro class of q) -> closed-form KL between them.
CLOSED_KL: Dict[Tuple[type, type], Callable[..., Optional[torch.Tensor]]] = {
    (pd.Normal, pd.Normal): _kl_normal_normal}


class SupportCheck(NamedTuple):
    """How one support is checked, two ways that agree.

    ``witness(t)`` is the hot path: a tuple of 0-dim tensors, computed on the device and
    never read by itself, that are all finite exactly when every element of ``t`` lies in
    the support (NaN anywhere in ``t`` makes them NaN too).  The training step sums them
    into its one finiteness read with the loss and the gradients' sums, so a support
    check costs a reduction and an elementwise op or two, with no comparison, stack or
    ``where`` of its own.  For a lower bound :math:`l` and an interval :math:`[l, u]`:

    .. math::

        \\log(\\min t - l) \\quad\\text{finite iff } \\min t > l, \\qquad
        \\sqrt{\\min t - l},\\ \\sqrt{u - \\max t}
        \\quad\\text{finite iff } l \\le \\min t,\\ \\max t \\le u

    (on :math:`[0, 1]`, :math:`\\arccos(\\max t)` replaces the second root: it is finite
    iff :math:`\\max t \\le 1` once :math:`\\min t \\ge 0`, one op fewer).

    ``bad(t)`` is the exact answer, a 0-dim bool (NaN is never a violation of a bound:
    the NaN guard names it); it runs only once a witness came out non-finite, to tell a
    value outside the support from a NaN, and for the message.

    >>> check = interval_check(0.0, 1.0)
    >>> [bool(torch.isfinite(w)) for w in check.witness(torch.tensor([0.0, 1.0]))]
    [True, True]
    >>> bool(check.bad(torch.tensor([0.5, 1.5])))
    True
    """

    witness: Callable[[torch.Tensor], Tuple[torch.Tensor, ...]]
    bad: Callable[[torch.Tensor], torch.Tensor]


def _generic_check(bad: Callable[[torch.Tensor], torch.Tensor]) -> SupportCheck:
    """A check from its exact test alone: the witness is :math:`\\log[\\text{not bad}]`,
    0 or :math:`-\\infty`."""
    return SupportCheck(lambda t: ((~bad(t)).to(torch.get_default_dtype()).log(),), bad)


def greater_than_check(lower: float) -> SupportCheck:
    """``t > lower`` everywhere (``constraints.greater_than``, e.g. ``positive``)."""
    def positive(t: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return (t.amin().log(),)

    def above(t: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return ((t.amin() - lower).log(),)
    return SupportCheck(positive if lower == 0 else above, lambda t: t.amin() <= lower)


def interval_check(lower: float, upper: float) -> SupportCheck:
    """``lower <= t <= upper`` everywhere (``constraints.interval``, e.g.
    ``unit_interval``), from one ``aminmax``."""
    def unit(t: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        lo, hi = torch.aminmax(t)
        return lo.sqrt(), hi.acos()

    def general(t: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        lo, hi = torch.aminmax(t)
        return (lo - lower).sqrt(), (upper - hi).sqrt()
    return SupportCheck(unit if (lower, upper) == (0, 1) else general,
                        interval_violation(lower, upper))


def _support_check(c) -> Optional[SupportCheck]:
    """The check of constraint ``c`` (``None``: nothing to check)."""
    if c is constraints.real or isinstance(c, type(constraints.real)) or \
            constraints.is_dependent(c):
        return None
    if isinstance(c, constraints.independent):
        return None if _support_check(c.base_constraint) is None else \
            _generic_check(lambda t: (~c.check(t)).any())
    if isinstance(c, type(constraints.positive)):  # greater_than(lower_bound)
        return greater_than_check(c.lower_bound)
    if isinstance(c, type(constraints.unit_interval)):  # interval(lower, upper)
        return interval_check(c.lower_bound, c.upper_bound)
    return _generic_check(lambda t: (~c.check(t)).any())  # NaN fails; the reader skips it


def unnormalised_probs_violation(t: torch.Tensor) -> torch.Tensor:
    """True if class probabilities ``t`` have a negative entry or a row that sums to 0
    (any other row is normalised over the last dimension, as torch does)."""
    return (t.amin() < 0) | (t.sum(-1).amin() <= 0)


#: The check of unnormalised class probabilities, for ``Family(param_checks=...)``.
UNNORMALISED_PROBS = {"probs": (unnormalised_probs_violation,
                                "must be non-negative with a positive sum over the last "
                                "dimension (it is normalised there, as torch does)")}


def interval_violation(lower: float, upper: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """``t -> t.min() < lower or t.max() > upper``, as one reduction and a 0-dim test."""
    def bad(t: torch.Tensor) -> torch.Tensor:
        lo, hi = torch.aminmax(t)
        return (lo < lower) | (hi > upper)
    return bad


def _constraints(*classes) -> Dict[str, object]:
    out: Dict[str, object] = {}
    for cls in classes:
        table = getattr(cls, "arg_constraints", None)
        if isinstance(table, dict):
            for k, c in table.items():
                out.setdefault(k, c)
    return out


def closed_kl(p_family: "Family", q_family: "Family"):
    """The closed-form KL between two families (``None`` if there is none)."""
    return CLOSED_KL.get((p_family.pyro_cls, q_family.pyro_cls))


class Family:
    """How a family's parameters map to ``pyro.distributions``.

    Parameters
    ----------
    name : str
        ``distribution_name`` shown in ``print``.
    pyro_cls : type
        The ``pyro.distributions`` class that scores values (``log_prob``, entropy, KL).
    params : sequence of str
        Parameter names, in Pixyz's order.
    alternatives : mapping
        A parameter that may be given instead of another, never beside it, e.g.
        ``{"probs": "logits"}``: a factor given both raises (:meth:`given_twice`), as
        torch does.
    reparam : bool
        Whether samples are reparameterised.
    sampler_cls : type, optional
        A different class to draw samples with (the relaxed families).
    defaults : mapping
        Constructor defaults (``temperature=0.1``).
    log_prob : callable, optional
        ``(d, x) -> elementwise log-density``; defaults to ``d.log_prob(x)``.
    value_check : SupportCheck or callable, optional
        Replaces the check of ``pyro_cls.support``: a :class:`SupportCheck`, or
        ``x -> 0-dim bool tensor``, true if ``x`` is anywhere outside the support.
    lenient_support : bool
        Score values outside the support with the formula and a ``SupportWarning`` (a
        strict validation level raises instead): Pixyz's Bernoulli on real data.
    static : mapping
        Non-tensor constructor arguments passed to ``pyro_cls`` (``total_count``).
    param_checks : mapping, optional
        ``{name: (t -> 0-dim bool tensor, what a violation is in words)}``: replaces the
        check of a parameter's constraint (unnormalised class probabilities, which torch
        normalises).

    Examples
    --------
    >>> import pyro.distributions as pd
    >>> fam = Family("Normal", pd.Normal, ("loc", "scale"), reparam=True)
    >>> fam
    Family(Normal, Normal, params=('loc', 'scale'))
    >>> fam.build({"loc": torch.zeros(1), "scale": torch.ones(1)}).log_prob(torch.zeros(1))
    tensor([-0.9189])
    """

    def __init__(self, name: str, pyro_cls: Type[TorchDistribution], params: Sequence[str],
                 alternatives: Optional[Mapping[str, str]] = None, reparam: bool = False,
                 sampler_cls: Optional[Type[TorchDistribution]] = None,
                 sampler_params: Sequence[str] = (),
                 defaults: Optional[Mapping[str, object]] = None,
                 log_prob: Optional[_LOG_PROB] = None,
                 value_check: Union[SupportCheck, Callable[[torch.Tensor], torch.Tensor],
                                    None] = None,
                 float_values: bool = True, static: Optional[Mapping[str, object]] = None,
                 lenient_support: bool = False, support_text: Optional[str] = None,
                 param_checks: Optional[Mapping[str, Tuple[Callable, str]]] = None):
        self.name = name
        self.pyro_cls = pyro_cls
        self.params: Tuple[str, ...] = tuple(params)
        self.alternatives: Dict[str, str] = dict(alternatives or {})
        self.sampler_params: Tuple[str, ...] = tuple(sampler_params)
        self.all_params: Tuple[str, ...] = (self.params + tuple(self.alternatives.values())
                                            + self.sampler_params)
        self._needed = frozenset(self.params + self.sampler_params)
        self.reparam = reparam
        self.sampler_cls = sampler_cls
        self.defaults = dict(defaults or {})
        self.log_prob = log_prob or _default_log_prob
        self.value_check = value_check
        self.float_values = float_values
        self.static = dict(static or {})
        self.all_params += tuple(self.static)
        #: ``all_params`` as a set: forward's names are checked against it on every call.
        self.all_params_set = frozenset(self.all_params)
        self.lenient_support = lenient_support
        self.support_text = support_text
        #: Closed forms for the hot path (see above); none where the row customises
        #: scoring or sampling.
        closed = NUMERICS.get(pyro_cls, PYRO_NUMERICS)
        self.numerics = Numerics(closed.log_prob if log_prob is None else None,
                                 closed.rsample if sampler_cls is None else None,
                                 closed.nll if log_prob is None else None)
        self._param_constraints = _constraints(pyro_cls, sampler_cls)
        self._param_checks = {k: f for k, f in ((k, _support_check(c)) for k, c in
                                                self._param_constraints.items())
                              if f is not None}
        self._param_texts: Dict[str, str] = {}
        for k, (fn, text) in dict(param_checks or {}).items():
            self._param_checks[k] = _generic_check(fn)
            self._param_texts[k] = text
        support = pyro_cls.support if isinstance(pyro_cls.support, constraints.Constraint) \
            else None
        self._support = support
        given: Optional[SupportCheck] = None
        if isinstance(value_check, SupportCheck):
            given = value_check
        elif value_check is not None:
            given = _generic_check(value_check)
        self._value_check: Optional[SupportCheck] = given if given is not None else (
            _support_check(support) if support is not None and
            not getattr(support, "is_discrete", False) else None)

    def __repr__(self) -> str:
        return f"Family({self.name}, {self.pyro_cls.__name__}, params={self.params})"

    def missing(self, params: Mapping[str, object]):
        """The parameters ``params`` lacks (none where an alternative stands for one)."""
        if params.keys() >= self._needed:  # the common case, a subset test in C
            return []
        return [p for p in self.params + self.sampler_params
                if p not in params and self.alternatives.get(p) not in params]

    def given_twice(self, params) -> Optional[Tuple[str, str]]:
        """The first ``(parameter, alternative)`` pair that ``params`` (a mapping or a
        set of names) holds both of, or ``None``.

        >>> import pyro.distributions as pd
        >>> fam = Family("Bernoulli", pd.Bernoulli, ("probs",), {"probs": "logits"})
        >>> fam.given_twice({"probs": 0.9}), fam.given_twice({"probs": 0.9, "logits": 0.})
        (None, ('probs', 'logits'))
        """
        for a, b in self.alternatives.items():  # empty for most families: no work
            if a in params and b in params:
                return a, b
        return None

    def _kwargs(self, params: Mapping[str, object], names: Sequence[str]):
        out = {k: params[k] for k in self.static if k in params}
        for p in names:
            if p in params:
                out[p] = params[p]
            elif self.alternatives.get(p) in params:
                out[self.alternatives[p]] = params[self.alternatives[p]]
        return out

    def build(self, params: Mapping[str, object]):
        """The scoring ``pyro.distributions`` object (validation is ours, on every call)."""
        return self.pyro_cls(**self._kwargs(params, self.params), validate_args=False)

    def build_sampler(self, params: Mapping[str, object]):
        if self.sampler_cls is None:
            return self.build(params)
        return self.sampler_cls(**self._kwargs(params, self.sampler_params + self.params),
                                validate_args=False)

    def param_check(self, name: str, t: torch.Tensor) -> Optional[SupportCheck]:
        """The :class:`SupportCheck` of parameter ``name`` for tensor ``t`` (``None``:
        nothing to check)."""
        check = self._param_checks.get(name)
        return None if check is None or not t.is_floating_point() else check

    def param_support(self, name: str) -> str:
        """What a violation of parameter ``name``'s constraint is, in words."""
        if name in self._param_texts:
            return self._param_texts[name]
        return f"is outside its support ({self._param_constraints.get(name)})"

    def value_check_for(self, x: torch.Tensor) -> Optional[SupportCheck]:
        """The :class:`SupportCheck` of the support for value ``x`` (``None``: nothing to
        check)."""
        check = self._value_check
        return None if check is None or x.numel() == 0 else check

    def value_support(self) -> str:
        """What a value outside the support is, in words."""
        return self.support_text or f"is outside the support of {self.name} ({self._support})"
