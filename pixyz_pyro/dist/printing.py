"""How a joint prints after ``replace_var``: its factorization, with the new names.

``(p(x) p(y) p(z|y)).marginalize_var(["y"]).replace_var(z="w", x="a")`` prints, as
Pixyz documents it, ``p(w,a) = \\int p(a)p(w|y)p(y)dy``, and its network architecture
lists each factor under its renamed text with the original after an arrow,
``p(w|y) -> p(z|y):``.  The functions here walk products, marginals and renamings with
the map from inner names to outer names; nothing is stored.

>>> import torch
>>> from pixyz_pyro.dist import Normal
>>> p = Normal(loc="y", scale=1., var=["x"], cond_var=["y"]) * Normal(loc=0., scale=1., var=["y"])
>>> print(p.marginalize_var(["y"]).replace_var(x="a").prob_joint_factorized_and_text)
p(a) = \\int p(a|y)p(y)dy
"""
from typing import TYPE_CHECKING, Callable, List, Tuple

from .naming import latex_name, prob_text

if TYPE_CHECKING:
    from .distribution import Distribution

Rename = Callable[[str], str]


def _identity(v: str) -> str:
    return v


def renamed_factors(dist, rename: Rename = _identity) -> List[Tuple[str, "Distribution"]]:
    """``(renamed prob text, atomic distribution)`` for each factor, in print order."""
    from .joint import MarginalizeVarDistribution, MultiplyDistribution, ReplaceVarDistribution

    if isinstance(dist, ReplaceVarDistribution):
        fwd = dist._fwd
        return renamed_factors(dist.p, lambda v: rename(fwd.get(v, v)))
    if isinstance(dist, MarginalizeVarDistribution):
        return renamed_factors(dist.p, rename)
    if isinstance(dist, MultiplyDistribution):
        out: List[Tuple[str, "Distribution"]] = []
        for f in dist._print_order:
            out.extend(renamed_factors(f, rename))
        return out
    return [(prob_text(dist.name, [rename(v) for v in dist.var],
                       [rename(c) for c in dist.cond_var]), dist)]


def factorized_text(dist, rename: Rename = _identity) -> str:
    """The factorization of ``dist`` with its variables renamed by ``rename``."""
    from .joint import MarginalizeVarDistribution, MultiplyDistribution, ReplaceVarDistribution

    if isinstance(dist, ReplaceVarDistribution):
        fwd = dist._fwd
        return factorized_text(dist.p, lambda v: rename(fwd.get(v, v)))
    if isinstance(dist, MarginalizeVarDistribution):
        inner = factorized_text(dist.p, rename)
        return "\\int " + inner + "".join(f"d{latex_name(rename(v))}"
                                          for v in dist._marginalized)
    if isinstance(dist, MultiplyDistribution):
        return "".join(factorized_text(f, rename) for f in reversed(dist._print_order))
    own = dist.prob_factorized_text
    if own != dist.prob_text:  # a mixture or a posterior: its own formula
        return own
    return prob_text(dist.name, [rename(v) for v in dist.var],
                     [rename(c) for c in dist.cond_var])


def network_text(dist) -> str:
    """Each factor's network under its renamed text (``new -> original:`` if renamed)."""
    parts = []
    for text, atom in renamed_factors(dist):
        own = atom.prob_joint_factorized_and_text
        head = f"{text}:" if text == atom.prob_text else f"{text} -> {own}:"
        parts.append(f"{head}\n{atom._network_repr()}")
    return "\n".join(parts)
