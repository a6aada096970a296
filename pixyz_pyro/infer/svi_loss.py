"""Any pixyz_pyro loss as a Pyro SVI loss, through Pyro's own ELBO where one matches.

``pyro.infer.SVI(model, guide, optim, loss=SVILoss(loss))`` trains any objective of the
loss algebra with Pyro's own loop.  Each call:

1. reads the loss's mapping (:func:`~pixyz_pyro.infer.objective.objective`, once, at
   construction): which stock ELBO computes the formula;
2. if there is one, and the ``model`` and ``guide`` that SVI hands over are the Pyro
   programs of the loss's distributions (``to_pyro(p, observed=[...])`` of the same
   factors, or the very function a ``from_pyro`` distribution wraps), runs that ELBO on
   them: ``scale * elbo.differentiable_loss(model, guide, *args, **kwargs)``.  Wrapped
   functions (``from_pyro``) that mark a site for enumeration switch ``Trace_ELBO`` to
   ``TraceEnum_ELBO`` (the first marked site stops the ``Trace_ELBO`` run; the random
   state is put back, so the draws are those of a ``TraceEnum_ELBO`` run);
3. otherwise falls back to the direct executor on the data (keywords named after the
   variables, or positional arguments bound through the model's signature), registering
   the distributions' networks with Pyro's store so that SVI's optimizer finds them.

:meth:`SVILoss.route` says which of the two a call takes, and why.  Either way the value
is the loss's value on the same draws.

A multi-sample bound maps like any other formula: ``-IWAE(p, q, k).mean()`` (or
``VRBound(p, q, k, alpha)``, estimator ``"reparam"``) runs Pyro's own
``RenyiELBO(alpha, num_particles=k, vectorize_particles=True)`` (see
:mod:`pixyz_pyro.infer.renyi`, whose ``renyi_objective(loss)`` gives the model and guide):
``svi.step`` and ``svi.evaluate_loss`` run its ``loss_and_grads`` / ``loss`` (an
``SVILoss`` is a ``pyro.infer.ELBO``, so that SVI calls them), with the value and the
gradient scaled by the loss's constant and ``.mean()``.  ``differentiable_loss``, which
``RenyiELBO`` does not have, computes ``RenyiELBO``'s value and surrogate gradient from
the same traces (:func:`~pixyz_pyro.infer.renyi.renyi_differentiable_loss`), so the three
agree on the same draws (also for a wrapped function with a global site, whose direct
bound would share one global draw among its particles).  The ``"dreg"`` and ``"stl"``
estimators have no Pyro counterpart and stay on the direct executor; :meth:`SVILoss.route`
says so.

Programs with ``global_vars`` go to the direct executor: the loss, evaluated on its own,
draws and scores those variables in every row, and Pyro's ELBO on the programs once, so
the two are different objectives (:meth:`SVILoss.route` says so).

``SVILoss(loss, executor="pyro")`` insists on Pyro's side: a loss that maps to no stock ELBO
is an error at construction, and a call whose model and guide are not the loss's own
programs is an error that says why.
"""
import inspect
from typing import Optional, Tuple

import torch
from pyro.infer import ELBO, RenyiELBO, Trace_ELBO, TraceEnum_ELBO, TraceMeanField_ELBO
from pyro.poutine.messenger import Messenger

from ..errors import LossError
from ..loss.base import Loss
from ..loss.plan import compile_plan
from .from_pyro import PyroFunctionDistribution
from .objective import objective
from .program import PyroProgram, ordered_factors, register_modules
from .renyi import renyi_differentiable_loss, scaled_loss_and_grads
from .translate import PyroTranslationError

EXECUTORS = ("direct", "pyro")

_ELBO_CLASSES = {"Trace_ELBO": Trace_ELBO, "TraceMeanField_ELBO": TraceMeanField_ELBO,
                 "TraceEnum_ELBO": TraceEnum_ELBO, "RenyiELBO": RenyiELBO}


class _Enumerates(Exception):
    """Raised by :class:`_StopAtEnumeration` at the first site marked for enumeration."""


class _StopAtEnumeration(Messenger):
    def _pyro_sample(self, msg) -> None:
        if not msg["is_observed"] and msg["infer"].get("enumerate") == "parallel":
            raise _Enumerates(msg["name"])


def _rng_state(args, kwargs):
    cuda = sorted({t.device.index or 0 for t in list(args) + list(kwargs.values())
                   if isinstance(t, torch.Tensor) and t.is_cuda})
    return torch.get_rng_state(), [(d, torch.cuda.get_rng_state(d)) for d in cuda]


def _set_rng_state(state) -> None:
    torch.set_rng_state(state[0])
    for d, s in state[1]:
        torch.cuda.set_rng_state(s, d)


def _rows(args, kwargs) -> int:
    for t in list(args) + list(kwargs.values()):
        if isinstance(t, torch.Tensor) and t.dim() > 0:
            return t.shape[0]
    return 1


def _same_function(a, b) -> bool:
    return a is b or (inspect.ismethod(a) and a == b)


def _factor_ids(dists) -> set:
    """The atomic distributions of ``dists`` (a distribution with no Pyro sites is its
    own atom)."""
    out = set()
    for d in dists:
        try:
            out |= {id(f) for f in ordered_factors(d)}
        except PyroTranslationError:
            out.add(id(d))
    return out


class SVILoss:
    """Wrap a scalar :class:`~pixyz_pyro.loss.Loss` for ``pyro.infer.SVI``.

    .. math::

        \\text{SVILoss}(\\ell)(\\text{model}, \\text{guide}, x) =
        \\begin{cases} s \\cdot \\text{ELBO}(\\text{model}, \\text{guide}, x)
        & \\text{a stock ELBO computes } \\ell = s \\cdot \\text{ELBO} \\\\
        \\ell(x) & \\text{otherwise (the direct executor)} \\end{cases}

    Parameters
    ----------
    loss : Loss
        A scalar loss (reduced with ``.sum()`` or ``.mean()``).
    max_plate_nesting : int, optional
        For ``TraceEnum_ELBO`` and vectorised particles; by default 1 for ``to_pyro``
        programs and the guide's own ``from_pyro(..., max_plate_nesting=...)``.
    executor : str
        ``"direct"`` (the default: the mapping above, Pyro's ELBO where one matches) or
        ``"pyro"``: Pyro's ELBO or an error (a loss that maps to none, a model and guide
        that are not the loss's programs).

    Examples
    --------
    >>> import torch, pyro
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import ELBO, LogProb
    >>> from pixyz_pyro.infer import SVILoss, to_pyro
    >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    >>> prior = Normal(loc=torch.nn.Parameter(torch.zeros(1)), scale=1., var=["z"],
    ...                name="p_{prior}")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * prior
    >>> loss = SVILoss(-ELBO(p, q).sum())
    >>> model, guide = to_pyro(p, observed=["x"]), to_pyro(q)
    >>> loss.route(model, guide)
    ('Trace_ELBO', '')
    >>> loss.route(model, lambda x: None)[1]
    'the guide is not the Pyro program of q(z|x) (to_pyro of its factors, or the function it wraps)'
    >>> svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.1}), loss=loss)
    >>> for _ in range(300):
    ...     _ = svi.step(torch.full((4, 1), 2.0))
    >>> abs(prior.loc.item() - 2.0) < 0.5  # the prior's mean moves to E_q[z] = x = 2
    True
    """

    def __init__(self, loss: Loss, max_plate_nesting: Optional[int] = None,
                 executor: str = "direct"):
        if not isinstance(loss, Loss):
            raise LossError(f"SVILoss needs a pixyz_pyro loss, got {type(loss).__name__}")
        if executor not in EXECUTORS:
            raise LossError(f"SVILoss: executor must be one of {EXECUTORS}, got {executor!r}")
        self.executor = executor
        self.expression = loss
        self.plan = compile_plan(loss)
        #: The loss's :class:`~pixyz_pyro.infer.objective.Objective`.
        self.mapping = objective(self.plan)
        if executor == "pyro" and self.mapping.elbo is None:
            raise LossError(f"SVILoss(executor='pyro'): {loss._short()} maps to no stock "
                            f"Pyro ELBO: {self.mapping.reason}; use executor='direct'")
        self.max_plate_nesting = max_plate_nesting
        self._modules = loss.distributions()

    def __repr__(self) -> str:
        return f"SVILoss({self.expression._short()}: {self.mapping.describe()})"

    # --- which route ------------------------------------------------------------------
    def _program_mismatch(self, fn, dists, dist, role: str) -> str:
        what = (f"the {role} is not the Pyro program of {dist.prob_text} (to_pyro of its "
                f"factors, or the function it wraps)")
        if isinstance(fn, PyroProgram):
            if _factor_ids([fn.dist]) != _factor_ids(dists):
                return what
            return ""
        if isinstance(dist, PyroFunctionDistribution) and fn is not None and \
                _same_function(dist.fn, fn):
            return ""
        return what

    def route(self, model, guide) -> Tuple[Optional[str], str]:
        """``(ELBO name, "")`` for a call with ``model`` and ``guide``, or ``(None, why)``
        when it goes to the direct executor.  A ``from_pyro`` guide under
        ``"Trace_ELBO"`` switches to ``TraceEnum_ELBO`` when it marks a site for
        enumeration (known only while it runs).  The direct executor evaluates the loss on
        all the data it is given: ``why`` says so for a program with ``subsample_size`` or
        ``subsample``."""
        name, why = self._reason(model, guide)
        sub = [fn for fn in (model, guide) if isinstance(fn, PyroProgram) and
               (fn.subsample_size is not None or fn.subsample is not None)]
        if name is None and sub:
            why += ("; the direct executor evaluates the loss on every row of the data, "
                    "not on the programs' subsample (subsample_size=/subsample= are "
                    "Pyro's plate subsampling)")
        return name, why

    def _reason(self, model, guide) -> Tuple[Optional[str], str]:
        m = self.mapping
        if m.elbo is None:
            return None, m.reason
        if m.guide is None:
            return None, "the loss names no guide distribution"
        why = self._program_mismatch(model, m.model_factors, m.model, "model") or \
            self._program_mismatch(guide, (m.guide,), m.guide, "guide")
        if why:
            return None, why
        if isinstance(model, PyroProgram):
            drawn = set(guide.dist.var) if isinstance(guide, PyroProgram) else set(m.guide.var)
            data = [v for v in model.dist.var if v not in drawn and v not in model.observed]
            if data:
                return None, (f"the model samples {data}, which the loss takes as data: "
                              f"to_pyro(..., observed={data})")
        glob = sorted({v for fn in (model, guide) if isinstance(fn, PyroProgram)
                       for v in fn.global_vars})
        if glob:
            return None, (f"the programs sample {glob} once for all rows (global_vars), "
                          f"while the loss, evaluated on its own, draws and scores them in "
                          f"every row, so Pyro's {m.elbo} would be another objective: the "
                          f"direct executor evaluates the loss as written (for Pyro's "
                          f"objective, pass loss=pyro.infer.{m.elbo}() to SVI)")
        if isinstance(guide, PyroProgram):
            ours = sorted(getattr(m.guide, "enumerated_var", ()))
            if sorted(guide.enumerate) != ours and m.kind == "elbo":
                return None, (f"the guide enumerates {sorted(guide.enumerate)} and the loss's "
                              f"{m.guide.prob_text} {ours}: sum the same variables out on "
                              f"both sides (enumerated(q, [...]) in the loss)")
        return m.elbo, ""

    def _nesting(self, guide) -> int:
        if self.max_plate_nesting is not None:
            return self.max_plate_nesting
        return getattr(self.mapping.guide, "max_plate_nesting", 1) \
            if not isinstance(guide, PyroProgram) else 1

    def _elbo(self, name: str, guide):
        n = self.mapping.num_particles
        options: dict = {"num_particles": n, "vectorize_particles": n > 1}
        if n > 1 or name == "TraceEnum_ELBO":
            options["max_plate_nesting"] = self._nesting(guide)
        if name == "RenyiELBO":  # the bound's k draws, vectorised as the bound draws them
            options.update(alpha=self.mapping.alpha, vectorize_particles=True,
                           max_plate_nesting=self._nesting(guide))
        return _ELBO_CLASSES[name](**options)

    def _route(self, model, guide) -> Optional[str]:
        """The ELBO of this call, or ``None``; with ``executor="pyro"`` a fallback is an
        error."""
        name, why = self.route(model, guide)
        if name is None and self.executor == "pyro":
            raise LossError(f"SVILoss(executor='pyro'): {why}")
        return name

    def _factor(self, args, kwargs) -> float:
        """``loss = factor * Pyro's loss``."""
        m = self.mapping
        return m.scale / _rows(args, kwargs) if m.mean else m.scale

    # --- the two executors ------------------------------------------------------------
    def _pyro(self, name, model, guide, args, kwargs) -> torch.Tensor:
        m = self.mapping
        if name == "Trace_ELBO" and m.kind == "elbo" and not isinstance(guide, PyroProgram):
            state = _rng_state(args, kwargs)
            try:
                value = self._elbo(name, guide).differentiable_loss(
                    _StopAtEnumeration()(model), _StopAtEnumeration()(guide), *args,
                    **kwargs)
            except _Enumerates:
                _set_rng_state(state)
                value = self._elbo("TraceEnum_ELBO", guide).differentiable_loss(
                    model, guide, *args, **kwargs)
        else:
            value = self._elbo(name, guide).differentiable_loss(model, guide, *args, **kwargs)
        value = m.scale * value
        return value / _rows(args, kwargs) if m.mean else value

    def _data(self, model, args, kwargs) -> dict:
        """The direct executor's input dict: keywords by variable name; positional
        arguments through a ``to_pyro`` model's data order or a wrapped function's
        signature."""
        if not args:
            return dict(kwargs)
        if isinstance(model, PyroProgram):
            return model._data(args, dict(kwargs))
        wrapped = [d for d in self._modules if isinstance(d, PyroFunctionDistribution)
                   and model is not None and _same_function(d.fn, model)]
        if wrapped:
            fn = wrapped[0].fn
            fn = fn.forward if isinstance(fn, torch.nn.Module) else fn
            bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
            names = wrapped[0]._arg_data
            return {names.get(a, a): v for a, v in bound.items() if v is not None}
        raise LossError(f"SVILoss takes the data as keyword arguments, svi.step(x=...), "
                        f"named after the variables {self.expression.input_var}; got "
                        f"{len(args)} positional argument(s)")

    def _direct(self, model, args, kwargs) -> torch.Tensor:
        data = self._data(model, args, kwargs)
        register_modules(self._modules)
        value = self.expression.eval(data)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            raise LossError(f"SVILoss: {self.expression.loss_text} is not a scalar; reduce it "
                            f"with .mean() or .sum()")
        return value

    # --- Pyro's ELBO interface --------------------------------------------------------
    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """The loss as a tensor with its gradient graph.  ``RenyiELBO`` has no
        differentiable loss: a bound mapped to it is computed here from Pyro's traces, with
        ``RenyiELBO``'s value and gradient on the same draws."""
        name = self._route(model, guide)
        if name is None:
            return self._direct(model, args, kwargs)
        if name == "RenyiELBO":
            return self._factor(args, kwargs) * renyi_differentiable_loss(
                self._elbo(name, guide), model, guide, args, kwargs)
        return self._pyro(name, model, guide, args, kwargs)

    def loss(self, model, guide, *args, **kwargs) -> float:
        """The loss's value (no gradient): Pyro's ``loss`` for ``RenyiELBO``."""
        if self._route(model, guide) == "RenyiELBO":
            with torch.no_grad():
                value = self._elbo("RenyiELBO", guide).loss(model, guide, *args, **kwargs)
            return self._factor(args, kwargs) * value
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        """The loss's value, its gradient added to the parameters' ``.grad``: Pyro's own
        ``loss_and_grads`` for ``RenyiELBO`` (gradient scaled as the value is)."""
        if self._route(model, guide) == "RenyiELBO":
            params = [t for d in self._modules for t in d.parameters()]
            return scaled_loss_and_grads(self._elbo("RenyiELBO", guide),
                                         self._factor(args, kwargs), params, model, guide,
                                         args, kwargs)
        value = self.differentiable_loss(model, guide, *args, **kwargs)
        if value.requires_grad:  # (a loss of frozen parameters has no gradient to add)
            value.backward()
        return value.detach().item()

    def __call__(self, model, guide, *args, **kwargs) -> torch.Tensor:
        return self.differentiable_loss(model, guide, *args, **kwargs)


# SVI calls an ELBO's own loss_and_grads (otherwise it differentiates what the loss returns):
# an SVILoss is one, so that a bound mapped to RenyiELBO trains through Pyro's own gradient.
ELBO.register(SVILoss)


def as_svi_loss(loss: Loss) -> SVILoss:
    """``loss`` as an object that ``pyro.infer.SVI(..., loss=...)`` accepts.

    Parameters
    ----------
    loss : Loss
        The pixyz_pyro loss.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> p = Normal(loc=0., scale=1., var=["x"])
    >>> svi_loss = as_svi_loss(-LogProb(p).sum())
    >>> float(svi_loss(lambda **kw: None, lambda **kw: None, x=torch.zeros(2)))  # log(2 pi)
    1.837877...
    """
    return SVILoss(loss)
