"""Pixyz's ``DistGraph``: the graph of a distribution's factors, as a view.

In Pixyz every distribution holds a ``DistGraph`` (``p.graph``) of factor nodes and
variable nodes.  Here the joint's structure is :class:`pixyz_pyro.graph.Graph`, and
``p.graph`` is a light view over ``p`` with Pixyz's API: ``name``, ``var``, ``cond_var``,
``factors()``, ``distribution(var)``, ``set_option`` and ``visible_graph``.

``set_option(options, var)`` sets sampling options (``batch_n``, ``sample_shape``,
``reparam``) of the factors that define ``var`` (all factors when ``var`` is empty).  The
options are stored on the distribution itself, in plain sight (``p.graph.options()``),
and only a product's ``sample`` reads them: a joint is drawn in one pass, so the options
of its factors must agree.

Examples
--------
>>> import torch
>>> from pixyz_pyro.dist import Normal
>>> p = Normal(loc="y", scale=1., var=["x"], cond_var=["y"]) * Normal(loc=0., scale=1., var=["y"])
>>> p.graph.set_option(dict(batch_n=4, sample_shape=(2, 3)), ["y"])
>>> {k: tuple(v.shape) for k, v in p.sample().items()}
{'y': (2, 3, 4), 'x': (2, 3, 4)}
>>> p.graph.set_option({}, ["y"])
>>> sorted(p.graph.visible_graph(dotmode=True).edges())
[('y', 'x')]
"""
from typing import Dict, Iterator, List

_SAMPLE_OPTIONS = ("batch_n", "sample_shape", "reparam")


def _store(dist) -> Dict:
    """``{"global": {...}, index: {...}}``: the options set through ``dist.graph``."""
    return dist._graph_options


class Factor:
    """One factor node of a :class:`DistGraph`: the atomic distribution and its options."""

    def __init__(self, owner, index: int, dist):
        self._owner, self._index, self.dist = owner, index, dist

    @property
    def option(self) -> Dict:
        return dict(_store(self._owner).get(self._index, {}))

    @option.setter
    def option(self, value: Dict) -> None:
        _store(self._owner)[self._index] = dict(value)

    @property
    def var(self) -> List[str]:
        return self.dist.var

    @property
    def cond_var(self) -> List[str]:
        return self.dist.cond_var

    @property
    def input_var(self) -> List[str]:
        return self.dist.input_var

    @property
    def prob_text(self) -> str:
        return self.dist.prob_text

    def __str__(self) -> str:
        return f"{self.prob_text}:\n{self.dist._network_repr()}"

    def __repr__(self) -> str:
        return f"Factor({self.prob_text})"


class DistGraph:
    """The factor graph of ``dist`` (see the module docstring).

    Parameters
    ----------
    dist : Distribution
        The distribution viewed.

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * Normal(loc=0., scale=1.,
    ...                                                               var=["z"])
    >>> g = p.graph
    >>> type(g).__name__, g.var, g.prob_factorized_text
    ('DistGraph', ['x', 'z'], 'p(x|z)p(z)')
    """

    def __init__(self, dist):
        self._dist = dist

    # --- description -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._dist.name

    @name.setter
    def name(self, value: str) -> None:
        self._dist.name = value

    @property
    def var(self) -> List[str]:
        return self._dist.var

    @property
    def cond_var(self) -> List[str]:
        return self._dist.cond_var

    @property
    def input_var(self) -> List[str]:
        return self._dist.input_var

    @property
    def all_var(self) -> List[str]:
        out: List[str] = []
        for f in self._atoms():
            out.extend(v for v in f.var + f.cond_var if v not in out)
        return out

    @property
    def marginalize_list(self) -> set:
        return set(getattr(self._dist, "_marginalized", ()))

    @property
    def has_reparam(self) -> bool:
        return self._dist.has_reparam

    @property
    def prob_text(self) -> str:
        return self._dist.prob_text

    @property
    def prob_factorized_text(self) -> str:
        return self._dist.prob_factorized_text

    @property
    def prob_joint_factorized_and_text(self) -> str:
        return self._dist.prob_joint_factorized_and_text

    def __str__(self) -> str:
        return str(self._dist)

    def __repr__(self) -> str:
        """As Pixyz prints a joint: its atomic factors as numbered modules."""
        atoms = self._atoms()
        if len(atoms) == 1 and atoms[0] is self._dist:
            return repr(self._dist)
        lines = ["DistGraph("]
        for i, a in enumerate(atoms):
            lines.append(f"  ({i}): " + repr(a).replace("\n", "\n  "))
        return "\n".join(lines + [")"])

    # --- factors -----------------------------------------------------------------------
    def _atoms(self) -> List:
        """The atomic factors, in the order multiplied (through renamings and marginals)."""
        from .joint import MarginalizeVarDistribution, MultiplyDistribution, ReplaceVarDistribution
        out: List = []

        def walk(d) -> None:
            if isinstance(d, (MarginalizeVarDistribution, ReplaceVarDistribution)):
                walk(d.p)
            elif isinstance(d, MultiplyDistribution):
                for f in d.factors():
                    walk(f)
            else:
                out.append(d)

        walk(self._dist)
        return out

    def factors(self, sorted: bool = False) -> Iterator[Factor]:
        """The factor nodes (in sampling order with ``sorted=True``)."""
        atoms = self._atoms()
        order = getattr(self._dist, "_order", None) if sorted else None
        seq = list(order) if order is not None else atoms
        index = {id(a): i for i, a in enumerate(atoms)}
        for a in seq:
            yield Factor(self._dist, index[id(a)], a)

    def _factors_from_variable(self, var_name: str) -> List[Factor]:
        return [f for f in self.factors() if var_name in f.var]

    def distribution(self, var_name: str):
        """The atomic distribution that defines ``var_name``."""
        found = self._factors_from_variable(var_name)
        if not found:
            raise ValueError(f"{self._dist.prob_text} has no distribution of {var_name!r}; "
                             f"its variables are {self.all_var}")
        return found[0].dist

    # --- options -----------------------------------------------------------------------
    def set_option(self, option_dict: Dict, var=()) -> None:
        """Set sampling options of the factors defining ``var`` (of all, if empty)."""
        if not isinstance(option_dict, dict):
            raise TypeError(f"set_option takes a dict of options, got "
                            f"{type(option_dict).__name__}")
        if isinstance(var, str):
            var = [var]
        if not var:
            _store(self._dist)["global"] = dict(option_dict)
            return
        for v in var:
            found = self._factors_from_variable(v)
            if not found:
                raise ValueError(f"set_option: {self._dist.prob_text} has no variable {v!r}; "
                                 f"its variables are {self.all_var}")
            for f in found:
                f.option = option_dict

    def options(self) -> Dict:
        """Every option set: ``{"global": {...}, factor prob_text: {...}}``."""
        store = _store(self._dist)
        out = {"global": dict(store["global"])}
        for f in self.factors():
            if store.get(f._index):
                out[f.prob_text] = dict(store[f._index])
        return out

    # --- drawing -----------------------------------------------------------------------
    def visible_graph(self, dotmode: bool = False):
        """The DAG of the variables as a ``networkx.DiGraph`` (edge ``c -> v`` when ``v``'s
        factor conditions on ``c``), ready for ``networkx.draw``.  Names are LaTeX in
        ``$...$``; with ``dotmode`` they are plain and the LaTeX is the ``texlbl``
        attribute (for dot2tex).  Unlike Pixyz, a variable with no edge is a node too."""
        try:
            import networkx as nx
        except ImportError as e:  # pragma: no cover - networkx comes with torch
            raise ImportError("visible_graph needs networkx (pip install networkx)") from e

        def label(name: str) -> str:
            return name if dotmode else f"${name}$"

        g = nx.DiGraph()
        for f in self._atoms():
            for v in f.var:
                if v in self.marginalize_list:
                    continue
                g.add_node(label(v))
                for c in f.cond_var:
                    g.add_edge(label(c), label(v))
        if dotmode:
            for n in g:
                g.nodes[n]["texlbl"] = f"${n}$"
        return g


def sample_options(dist) -> Dict:
    """The sampling options set through ``dist.graph`` (they must agree across factors)."""
    store = getattr(dist, "_graph_options", None)
    if not store:
        return {}
    out = {k: v for k, v in store["global"].items() if k in _SAMPLE_OPTIONS}
    for key, opts in store.items():
        if key == "global":
            continue
        for k, v in opts.items():
            if k not in _SAMPLE_OPTIONS:
                continue
            if k in out and out[k] != v:
                raise ValueError(f"{dist.prob_text}: the factors' {k} options disagree "
                                 f"({out[k]!r} and {v!r}); a joint is drawn in one pass")
            out[k] = v
    return out
