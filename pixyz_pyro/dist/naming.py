"""Variable lists and LaTeX names, without sympy."""
import re
from typing import List, Sequence, Union

from ..errors import VariableError

_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
    "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
    "Psi", "Omega",
}


def latex_name(name: str) -> str:
    """LaTeX-ify a name as sympy prints a symbol of that name.

    >>> latex_name("p_prior"), latex_name("p_{prior}"), latex_name("q1"), latex_name("beta")
    ('p_{prior}', 'p_{prior}', 'q_{1}', '\\\\beta')
    """
    if not isinstance(name, str):
        raise TypeError(f"the name of a distribution must be a string, got {name!r}")
    if "{" in name or "\\" in name or " " in name:
        return name
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", name)
    if m:
        return f"{latex_name(m.group(1))}_{{{m.group(2)}}}"
    if "_" in name:
        head, sub = name.split("_", 1)
        return f"{latex_name(head)}_{{{latex_name(sub)}}}"
    return "\\" + name if name in _GREEK else name


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
    """``p(x,z|y)``-style text."""
    text = f"{name}({','.join(var)}"
    if cond_var:
        text += f"|{','.join(cond_var)}"
    return text + ")"
