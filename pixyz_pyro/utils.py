"""Pixyz's helpers for dicts of samples and printing (``pixyz.utils``)."""
from typing import Dict, List, Sequence, Union

import torch

#: Pixyz's numerical epsilon.  pixyz_pyro's families use pyro.distributions' stable
#: parametrisations and never read it; it is kept, with its setter and getter, for code
#: that sets it or reads it back (see docs/pixyz-compat.md).
_EPSILON = 1e-7
#: Pixyz's sample-dict cache size.  pixyz_pyro keeps no cache across calls (one
#: evaluation memoises ``forward`` by input identity and drops it), so nothing reads it.
_CACHE_MAXSIZE = 20


def set_epsilon(eps: float) -> None:
    """Set Pixyz's ``epsilon`` setting (read back by :func:`epsilon`; no family uses it).

    Parameters
    ----------
    eps : float
        The value.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch("pixyz_pyro.utils._EPSILON", 1e-7):
    ...     set_epsilon(1e-6)
    ...     epsilon()
    1e-06
    """
    global _EPSILON
    _EPSILON = float(eps)


def epsilon() -> float:
    """The value set by :func:`set_epsilon` (``1e-7`` by default).

    Examples
    --------
    >>> isinstance(epsilon(), float)
    True
    """
    return _EPSILON


get_epsilon = epsilon


def set_cache_maxsize(cache_maxsize: int) -> None:
    """Set Pixyz's cache size setting (read back by :func:`cache_maxsize`).

    Parameters
    ----------
    cache_maxsize : int
        A non-negative size.

    Raises
    ------
    ValueError
        If it is not a non-negative int.

    pixyz_pyro has no cache that it sizes: :func:`lru_cache_for_sample_dict` is a
    pass-through.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch("pixyz_pyro.utils._CACHE_MAXSIZE", 20):
    ...     set_cache_maxsize(100)
    ...     cache_maxsize()
    100
    """
    if not isinstance(cache_maxsize, int) or isinstance(cache_maxsize, bool) \
            or cache_maxsize < 0:
        raise ValueError(f"set_cache_maxsize expects a non-negative int, got {cache_maxsize!r}")
    global _CACHE_MAXSIZE
    _CACHE_MAXSIZE = cache_maxsize


def cache_maxsize() -> int:
    """The value set by :func:`set_cache_maxsize` (20 by default).

    Examples
    --------
    >>> isinstance(cache_maxsize(), int)
    True
    """
    return _CACHE_MAXSIZE


def lru_cache_for_sample_dict():
    """Pixyz's memoising decorator for methods that take sample dicts; here a pass-through.

    Pixyz cached ``get_params`` results across calls, comparing whole batches by value.
    pixyz_pyro memoises each distribution's ``forward`` by input identity *within one
    evaluation* (a loss that uses ``q`` twice runs its network once) and keeps nothing
    afterwards, so code decorated for Pixyz runs unchanged and the decorator adds nothing.

    Examples
    --------
    >>> class Twice:
    ...     @lru_cache_for_sample_dict()
    ...     def get_params(self, params_dict=None, **kwargs):
    ...         return {k: 2 * v for k, v in params_dict.items()}
    >>> Twice().get_params({"a": 1})
    {'a': 2}
    >>> Twice.get_params.__name__
    'get_params'
    """
    def decorate(function):
        return function

    return decorate


def tolist(a) -> list:
    """``a`` as a list (a string or a single item becomes a one-item list).

    Parameters
    ----------
    a : object, list or tuple
        The item or items.

    Examples
    --------
    >>> tolist("x"), tolist(("x", "y"))
    (['x'], ['x', 'y'])
    """
    if isinstance(a, (list, tuple)):
        return list(a)
    return [a]


def get_dict_values(dicts: Dict, keys: Union[str, Sequence[str]], return_dict: bool = False):
    """The values of ``keys`` in ``dicts`` (a list, or a dict with ``return_dict``); missing
    keys are skipped, as in Pixyz.

    Parameters
    ----------
    dicts : dict
        A sample dict.
    keys : str or sequence of str
        The names to read.
    return_dict : bool
        Return ``{key: value}`` instead of the list of values.

    Examples
    --------
    >>> get_dict_values({"x": 1, "y": 2}, ["y", "z"])
    [2]
    >>> get_dict_values({"x": 1, "y": 2}, "x", return_dict=True)
    {'x': 1}
    """
    keys = tolist(keys)
    present = [k for k in keys if k in dicts]
    if return_dict:
        return {k: dicts[k] for k in present}
    return [dicts[k] for k in present]


def delete_dict_values(dicts: Dict, keys: Union[str, Sequence[str]]) -> Dict:
    """A copy of ``dicts`` without ``keys``.

    Parameters
    ----------
    dicts : dict
        A sample dict.
    keys : str or sequence of str
        The names to leave out.

    Examples
    --------
    >>> delete_dict_values({"x": 1, "y": 2}, "x")
    {'y': 2}
    """
    drop = set(tolist(keys))
    return {k: v for k, v in dicts.items() if k not in drop}


def detach_dict(dicts: Dict) -> Dict:
    """A copy of ``dicts`` with every tensor detached.

    Parameters
    ----------
    dicts : dict
        A sample dict.

    Examples
    --------
    >>> d = detach_dict({"x": torch.ones(1, requires_grad=True), "n": 3})
    >>> d["x"].requires_grad, d["n"]
    (False, 3)
    """
    return {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in dicts.items()}


def replace_dict_keys(dicts: Dict, replace_list_dict: Dict[str, str]) -> Dict:
    """A copy of ``dicts`` with keys renamed by ``replace_list_dict``.

    Parameters
    ----------
    dicts : dict
        A sample dict.
    replace_list_dict : dict
        ``{old name: new name}``.

    Examples
    --------
    >>> replace_dict_keys({"x": 1, "y": 2}, {"x": "z"})
    {'z': 1, 'y': 2}
    """
    return {replace_list_dict.get(k, k): v for k, v in dicts.items()}


def replace_dict_keys_split(dicts: Dict, replace_list_dict: Dict[str, str]):
    """``(renamed, rest)``: the renamed entries and the others.

    Parameters
    ----------
    dicts : dict
        A sample dict.
    replace_list_dict : dict
        ``{old name: new name}``.

    Examples
    --------
    >>> replace_dict_keys_split({"x": 1, "y": 2}, {"x": "z"})
    ({'z': 1}, {'y': 2})
    """
    renamed = {replace_list_dict[k]: v for k, v in dicts.items() if k in replace_list_dict}
    rest = {k: v for k, v in dicts.items() if k not in replace_list_dict}
    return renamed, rest


def sum_samples(samples: torch.Tensor, sum_dims=None) -> torch.Tensor:
    """Sum every dimension but the first (or ``sum_dims``).

    Parameters
    ----------
    samples : torch.Tensor
        ``(batch, ...)`` values.
    sum_dims : int or sequence of int, optional
        The dims to sum instead.

    Examples
    --------
    >>> sum_samples(torch.ones(2, 3, 4))
    tensor([12., 12.])
    """
    if sum_dims is not None:
        return samples.sum(dim=sum_dims)
    if samples.dim() <= 1:
        return samples
    return samples.sum(dim=tuple(range(1, samples.dim())))


def convert_latex_name(name: str) -> str:
    """A distribution's name as it prints in formulas (Pixyz's helper).

    ``_`` starts a subscript and ``^`` or ``__`` a superscript; a trailing number of a
    plain name becomes a subscript.

    Parameters
    ----------
    name : str
        The name, such as ``"p_prior"``.

    Examples
    --------
    >>> convert_latex_name("p_prior")
    'p_{prior}'
    """
    from .dist.naming import latex_name
    return latex_name(name)


def print_latex(obj):
    """Render a loss, a distribution or a model as LaTeX (IPython ``Math`` when available).

    Parameters
    ----------
    obj : Loss, Distribution or Model
        What to show; a model shows its loss.

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> out = print_latex(LogProb(Normal(loc=0., scale=1., var=["x"])))
    >>> getattr(out, "data", out)  # the text (an IPython Math object holds it as .data)
    '\\\\log p(x)'
    """
    from .loss.latex import print_latex as _print_latex
    if hasattr(obj, "loss_cls"):
        obj = obj.loss_cls
    return _print_latex(obj)


__all__: List[str] = [
    "tolist", "get_dict_values", "delete_dict_values", "detach_dict", "replace_dict_keys",
    "replace_dict_keys_split", "sum_samples", "print_latex", "convert_latex_name", "epsilon",
    "get_epsilon", "set_epsilon", "cache_maxsize", "set_cache_maxsize",
    "lru_cache_for_sample_dict",
]
