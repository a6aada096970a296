"""How each kind of distribution becomes Pyro sites: one rule per kind, by dispatch.

:func:`site_plan` maps a distribution to the list of its sites in sampling order, each a
:class:`Site`: the atomic distribution that scores it, and the renaming from that
distribution's own variable names to the names the Pyro program uses.  A kind registers
its rule with ``@site_plan.register``; a kind with none raises
:class:`PyroTranslationError`, which names it.

* a factor with a ``pyro.distributions`` form (``pyro_dist``) is one site per variable;
* a product is the sites of its factors, in the order of its DAG;
* ``p.marginalize_var([...])`` is the sites of ``p``: a Pyro model integrates a latent
  site out by sampling it, as the direct executor does;
* ``p.replace_var(z="w")`` is the sites of ``p``, renamed;
* a :class:`~pixyz_pyro.dist.Deterministic` map is a ``pyro.deterministic`` site, and the
  data distribution ``p_data(x)`` is no site at all.
"""
import functools
from typing import Dict, List, NamedTuple

from ..dist.distribution import Distribution
from ..dist.factor import FactorDistribution
from ..dist.joint import MarginalizeVarDistribution, MultiplyDistribution, ReplaceVarDistribution
from ..dist.mixture import MixtureModel, PosteriorMixtureModel
from ..dist.moe import MixtureOfNormal
from ..dist.special import CustomProb, Deterministic, EmpiricalDistribution
from ..dist.transformed import FlowDistribution
from ..errors import PixyzError


class PyroTranslationError(PixyzError, NotImplementedError):
    """A distribution has no translation to Pyro sites."""


class Site(NamedTuple):
    """One atomic distribution of a program and the names its variables take there."""

    dist: Distribution
    rename: Dict[str, str]  # its own name -> the program's name
    kind: str  # "sample", "deterministic" or "data"

    def outer(self, name: str) -> str:
        return self.rename.get(name, name)

    def inner_values(self, values: Dict) -> Dict:
        """The program's values, under the names this distribution reads."""
        if not self.rename:
            return values
        out = dict(values)
        for inner, outer in self.rename.items():
            if outer in values:
                out[inner] = values[outer]
        return out


@functools.singledispatch
def site_plan(dist: Distribution) -> List[Site]:
    """The Pyro sites of ``dist``, in sampling order."""
    raise PyroTranslationError(
        f"to_pyro: {dist.prob_text} is a {type(dist).__name__}, which has no translation "
        f"to Pyro sites (register one with pixyz_pyro.infer.translate.site_plan.register)")


def _atomic(dist: Distribution) -> List[Site]:
    return [Site(dist, {}, "sample")]


for _kind in (FactorDistribution, MixtureModel, PosteriorMixtureModel, MixtureOfNormal,
              FlowDistribution):
    site_plan.register(_kind, _atomic)


@site_plan.register
def _(dist: Deterministic) -> List[Site]:
    return [Site(dist, {}, "deterministic")]


@site_plan.register
def _(dist: EmpiricalDistribution) -> List[Site]:
    return [Site(dist, {}, "data")]


@site_plan.register
def _(dist: CustomProb) -> List[Site]:
    raise PyroTranslationError(
        f"to_pyro: {dist.prob_text} is a CustomProb, a density without a sampler, so it "
        f"cannot be a Pyro sample site; add it to the loss instead")


@site_plan.register
def _(dist: MultiplyDistribution) -> List[Site]:
    return [s for f in dist._order for s in site_plan(f)]


@site_plan.register
def _(dist: MarginalizeVarDistribution) -> List[Site]:
    return site_plan(dist.p)


@site_plan.register
def _(dist: ReplaceVarDistribution) -> List[Site]:
    fwd = {k: v for k, v in dist._fwd.items() if k != v}
    return [Site(s.dist, {k: fwd.get(v, v) for k, v in
                          {**{n: n for n in s.dist.var + s.dist.cond_var}, **s.rename}.items()
                          if fwd.get(v, v) != k}, s.kind)
            for s in site_plan(dist.p)]
