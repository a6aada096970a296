"""``sample(sample_mean=True)``: each variable set to its factor's mean, in ancestral order.

Pixyz's ``sample`` takes ``sample_mean=True`` to return means instead of draws.  For a
joint :math:`p(x, y) = p(y|x) p(x)` the means are plugged in ancestrally:
:math:`\\bar x = \\mathbb{E}[x]`, then :math:`\\bar y = \\mathbb{E}[y|\\bar x]`.

A mixture's hidden component is one-hot, and the mean of a one-hot variable is not
one-hot, so a mixture plugs in its *most probable* component (the argmax of the prior's
mean, as Pixyz does) and returns that component's mean.  This is not the mixture's mean
:math:`\\sum_k \\pi_k \\mu_k`, which :meth:`MixtureModel.sample_mean` returns.

Examples
--------
>>> import torch
>>> from pixyz_pyro.dist import Normal
>>> p = Normal(loc="x", scale=1., var=["y"], cond_var=["x"]) * Normal(loc=3., scale=1., var=["x"])
>>> p.sample(sample_mean=True)
{'x': tensor([3.]), 'y': tensor([3.])}
"""
from typing import Dict

import torch


def mean_values(dist, values: Dict) -> Dict[str, torch.Tensor]:
    """The new values ``dist.sample(values, sample_mean=True)`` returns (its ``var``)."""
    from .joint import MarginalizeVarDistribution, MultiplyDistribution, ReplaceVarDistribution
    from .mixture import MixtureModel
    from .special import EmpiricalDistribution

    if isinstance(dist, MultiplyDistribution):
        values, new = dict(values), {}
        for f in dist._order:
            if all(v in values for v in f.var):
                continue
            out = mean_values(f, values)
            values.update(out)
            new.update(out)
        return new
    if isinstance(dist, ReplaceVarDistribution):
        out = mean_values(dist.p, dist._inner(values))
        return {dist._fwd.get(k, k): v for k, v in out.items()}
    if isinstance(dist, MarginalizeVarDistribution):
        out = mean_values(dist.p, values)
        return {k: v for k, v in out.items() if k not in dist._marginalized}
    if isinstance(dist, MixtureModel):
        probs = dist.prior.sample_mean({k: values[k] for k in dist.prior.cond_var if k in values})
        k = int(probs.reshape(-1, probs.shape[-1]).mean(0).argmax())
        return mean_values(dist.distributions[k], values)
    if isinstance(dist, EmpiricalDistribution):
        return {v: values[v] for v in dist.var}
    if len(dist.var) != 1:
        raise NotImplementedError(f"{dist.prob_text} defines {dist.var}; sample(sample_mean=True) "
                                  f"needs one mean per variable")
    family = getattr(dist, "family", None)
    if family is not None and family.sampler_cls is not None:
        raise NotImplementedError(
            f"{dist.prob_text} ({dist.distribution_name}) draws from "
            f"{family.sampler_cls.__name__}, which has no closed-form mean; "
            f"sample(sample_mean=True) is not defined for it")
    cond = {k: values[k] for k in dist.cond_var if k in values}
    return {dist.var[0]: dist.sample_mean(cond)}
