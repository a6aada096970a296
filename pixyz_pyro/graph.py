"""Variables, factors and the joint's DAG, in pure Python (no torch, pyro or sympy).

A joint distribution such as :math:`p(x, z) = p(x|z) p(z)` is a set of *factors*.  A
factor defines its ``var`` given its ``cond_var``.  The factors form a directed acyclic
graph with an edge ``c -> v`` for each conditioning variable ``c`` of the factor that
defines ``v``.  :class:`Graph` is immutable: combining or renaming returns a new graph.
"""
from typing import Callable, Dict, Generic, Hashable, List, Sequence, Tuple, TypeVar, Union

from .errors import GraphError

K = TypeVar("K", bound=Hashable)  # a factor's key


class Graph(Generic[K]):
    """An immutable DAG of factors.

    Parameters
    ----------
    factors : sequence of (key, var, cond_var)
        ``key`` identifies the factor (any hashable, typically the distribution),
        ``var`` the variables it defines and ``cond_var`` those it conditions on.
    names : sequence of str, or a function returning one, optional
        Display names of the factors, used in error messages only (a function is called
        only then: naming every factor of every partial product of a long chain cost more
        than the rest of building it).

    Examples
    --------
    >>> g = Graph([("p_x", ("x",), ("z",)), ("p_z", ("z",), ())])
    >>> g.order
    ('p_z', 'p_x')
    >>> g.var, g.cond_var
    (('x', 'z'), ())
    """

    __slots__ = ("_factors", "_name_source", "order", "var", "cond_var", "_defined_by")

    def __init__(self, factors: Sequence[Tuple[K, Sequence[str], Sequence[str]]],
                 names: Union[Sequence[str], Callable[[], Sequence[str]]] = ()):
        self._factors = tuple((k, tuple(v), tuple(c)) for k, v, c in factors)
        self._name_source = names
        defined: Dict[str, int] = {}
        for i, (_, var, _) in enumerate(self._factors):
            for v in var:
                if v in defined:
                    raise GraphError(
                        f'variable "{v}" is defined twice in the product: by '
                        f"{self._names[defined[v]]} and by {self._names[i]}. Rename one "
                        f"with replace_var, or marginalize it out.")
                defined[v] = i
        self._defined_by = defined
        self.order = tuple(self._factors[i][0] for i in self._toposort())
        names_: List[str] = []
        for _, vs, _ in self._factors:
            names_.extend(vs)
        self.var: Tuple[str, ...] = tuple(names_)
        cond: List[str] = []
        for _, _, cs in self._factors:
            cond.extend(c for c in cs if c not in defined and c not in cond)
        self.cond_var = tuple(cond)

    @property
    def _names(self) -> Tuple[str, ...]:
        """The factors' display names (for messages)."""
        source = self._name_source
        names = tuple(source() if callable(source) else source)
        return names or tuple(str(k) for k, _, _ in self._factors)

    def _toposort(self) -> List[int]:
        n = len(self._factors)
        deps = [{self._defined_by[c] for c in cs if c in self._defined_by}
                for _, _, cs in self._factors]
        state = [0] * n  # 0 new, 1 visiting, 2 done
        out: List[int] = []

        def visit(i: int, path: List[int]) -> None:
            if state[i] == 2:
                return
            if state[i] == 1:
                cyc = path[path.index(i):] + [i]
                raise GraphError("the product has a cycle: " + " -> ".join(
                    self._names[j] for j in cyc) + ". A joint must be a DAG.")
            state[i] = 1
            for j in sorted(deps[i]):
                visit(j, path + [i])
            state[i] = 2
            out.append(i)

        # Visit in reverse order of appearance so that ``p(x|z) * p(z)`` samples z first
        # and independent factors keep a stable, readable order.
        for i in range(n):
            visit(i, [])
        return out

    def __len__(self) -> int:
        return len(self._factors)

    @property
    def print_order(self) -> Tuple[K, ...]:
        """The factor keys in the order Pixyz 0.3.3 documents when it prints a joint.

        Pixyz's docstrings show the order of its bipartite DAG (factor nodes and variable
        nodes, inserted factor by factor: the factor, its variables, its conditioning
        variables) under Kahn's algorithm with a *stack* of ready nodes (the sort of
        networkx 2.5).  Sampling does not use it: :attr:`order` is the sampling order.

        >>> Graph([("p_x", ("x",), ("z",)), ("p_y", ("y",), ("z",))]).print_order
        ('p_y', 'p_x')
        >>> Graph([("p_x", ("x",), ("z",)), ("p_z", ("z",), ("y",))]).print_order
        ('p_z', 'p_x')
        """
        Node = Tuple[str, Union[int, str]]  # ("factor", index) or ("var", name)
        nodes: Dict[Node, List[Node]] = {}  # node -> successors, in insertion order
        indegree: Dict[Node, int] = {}

        def add_edge(a: Node, b: Node) -> None:
            for n in (a, b):
                if n not in nodes:
                    nodes[n] = []
                    indegree[n] = 0
            nodes[a].append(b)
            indegree[b] += 1

        for i, (_, var, cond) in enumerate(self._factors):
            node = ("factor", i)
            nodes.setdefault(node, [])
            indegree.setdefault(node, 0)
            for v in var:
                add_edge(node, ("var", v))
            for c in cond:
                add_edge(("var", c), node)
        ready = [n for n in nodes if indegree[n] == 0]
        out: List[K] = []
        while ready:
            n = ready.pop()
            for child in nodes[n]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
            kind, key = n
            if kind == "factor" and isinstance(key, int):
                out.append(self._factors[key][0])
        return tuple(out)
