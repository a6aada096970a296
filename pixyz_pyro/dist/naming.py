"""Variable lists and LaTeX names, without sympy."""
import re
from typing import Any, Dict, Iterable, List, Sequence, Union

from ..errors import VariableError

_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
    "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
    "Psi", "Omega",
}


def latex_name(name: str) -> str:
    """LaTeX-ify a name as sympy prints a symbol of that name (Pixyz's
    ``convert_latex_name``): trailing digits and ``_`` parts become a subscript, ``__``
    and ``^`` parts a superscript, and Greek letters get a backslash.

    >>> latex_name("p_prior"), latex_name("p_{prior}"), latex_name("q1"), latex_name("beta")
    ('p_{prior}', 'p_{prior}', 'q_{1}', '\\\\beta')
    >>> latex_name("z_t1"), latex_name("a_b_c"), latex_name("x_1__2")
    ('z_{t1}', 'a_{b c}', 'x^{2}_{1}')
    """
    if not isinstance(name, str):
        raise TypeError(f"the name of a distribution must be a string, got {name!r}")
    if "{" in name or "\\" in name or " " in name:
        return name
    parts = re.split(r"(__|\^|_)", name)
    head = parts[0]
    supers: List[str] = []
    subs: List[str] = []
    for sep, part in zip(parts[1::2], parts[2::2]):
        (subs if sep == "_" else supers).append(part)
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", head)
    if m:
        head = m.group(1)
        subs.insert(0, m.group(2))
    text = _greek(head)
    if supers:
        text += "^{" + " ".join(map(_greek, supers)) + "}"
    if subs:
        text += "_{" + " ".join(map(_greek, subs)) + "}"
    return text


def _greek(part: str) -> str:
    if part == "lamda":
        return "\\lambda"
    return "\\" + part if part in _GREEK else part


def as_var_list(value: Union[str, Sequence[str], None], what: str) -> List[str]:
    """Normalise ``var``/``cond_var`` arguments to a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out = list(value)
    for v in out:
        if not isinstance(v, str):
            raise VariableError(f"{what} must be a list of variable names (strings), got {value!r}")
    if len(set(out)) != len(out):
        raise VariableError(f"{what} lists a variable twice: {out}")
    return out


def prob_text(name: str, var: Sequence[str], cond_var: Sequence[str]) -> str:
    """``p(x,z|y)``-style text; variable names are LaTeX-ified as in Pixyz
    (``x_u`` prints ``x_{u}``)."""
    text = f"{name}({','.join(map(latex_name, var))}"
    if cond_var:
        text += f"|{','.join(map(latex_name, cond_var))}"
    return text + ")"


def distinct_texts(dists: Iterable[Any]) -> Dict[int, str]:
    """``id(dist) -> text`` for the distributions among ``dists`` (in their order) that
    share their printed text with another one: they print as :math:`p^{(1)}(x|z)`,
    :math:`p^{(2)}(x|z)`, so that two different distributions are two different symbols
    (in formulas and in error messages alike).

    >>> class D:
    ...     def __init__(self, name, var):
    ...         self.name, self.var, self.cond_var = name, var, []
    ...         self.prob_text = prob_text(name, var, [])
    >>> a, b, c = D("p", ["x"]), D("p", ["x"]), D("q", ["x"])
    >>> sorted(distinct_texts([a, b, c]).values())
    ['p^{(1)}(x)', 'p^{(2)}(x)']
    """
    by_text: Dict[str, List[Any]] = {}
    for d in dists:
        same = by_text.setdefault(d.prob_text, [])
        if all(d is not o for o in same):
            same.append(d)
    out: Dict[int, str] = {}
    for same in by_text.values():
        if len(same) > 1:
            for i, d in enumerate(same, 1):
                out[id(d)] = prob_text(f"{d.name}^{{({i})}}", d.var, d.cond_var)
    return out


def outer_name(scope: Sequence[Any], v: str) -> str:
    """The user's name of variable ``v`` of a factor called inside the renamings
    ``scope`` (the ``replace_var`` distributions around it, outermost first).

    >>> class R:  # a renaming, as replace_var's distribution holds it
    ...     def __init__(self, fwd):
    ...         self._fwd = fwd
    >>> outer_name((R({"x1": "y"}), R({"b": "x1"})), "b")  # b -> x1 -> y
    'y'
    """
    for r in reversed(scope):
        v = r._fwd.get(v, v)
    return v


class Renamed:
    """A factor as the user names it inside renamings ``scope`` (see :func:`outer_name`),
    for messages: ``prob_text`` in the outer names; every other attribute is the
    factor's.

    >>> class F:
    ...     name, var, cond_var = "f", ["b"], ["a"]
    >>> class R:
    ...     _fwd = {"a": "x0", "b": "x1"}
    >>> Renamed(F(), (R(),)).prob_text
    'f(x_{1}|x_{0})'
    """

    __slots__ = ("dist", "scope")

    def __init__(self, dist: Any, scope: Sequence[Any]):
        self.dist = dist
        self.scope = scope

    @property
    def prob_text(self) -> str:
        d = self.dist
        return prob_text(d.name, [outer_name(self.scope, v) for v in d.var],
                         [outer_name(self.scope, v) for v in d.cond_var])

    def __getattr__(self, item: str) -> Any:
        return getattr(self.dist, item)
