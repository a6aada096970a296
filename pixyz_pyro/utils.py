"""Pixyz's helpers for dicts of samples and printing (``pixyz.utils``)."""
import functools
import weakref
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

#: Pixyz's numerical epsilon.  pixyz_pyro's families use pyro.distributions' stable
#: parametrisations and never read it; it is kept, with its setter and getter, for code
#: that sets it or reads it back (see docs/pixyz-compat.md).
_EPSILON = 1e-7
#: Pixyz's sample-dict cache size: the bound of :func:`lru_cache_for_sample_dict`, read
#: when a method is decorated (as in Pixyz).  Nothing else in pixyz_pyro caches across
#: calls.
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

    It bounds the memo of each method decorated afterwards with
    :func:`lru_cache_for_sample_dict` (0: no memo).

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


class _NotCached(Exception):
    """An argument that cannot be part of a key (unhashable, or an inference tensor): the
    call is not memoised."""


def _tensor_key(t: torch.Tensor, tensors: List[torch.Tensor]) -> Tuple:
    """A tensor's identity and state: its version counter (in-place changes), and its
    storage, dtype and device (``.data =`` and ``Module.to`` change those, not the
    version).  An inference tensor has no version counter, so an in-place change of it
    could not be seen: a call that reads one is not memoised."""
    if t.is_inference():
        raise _NotCached
    tensors.append(t)
    try:
        ptr = t.data_ptr()
    except RuntimeError:  # a tensor without storage (sparse, say)
        ptr = None
    return ("tensor", id(t), t._version, ptr, t.dtype, t.device, tuple(t.shape),
            t.requires_grad)


def _freeze(value: Any, tensors: List[torch.Tensor]) -> Any:
    """A hashable key of an argument; the tensors it holds are appended to ``tensors``."""
    if isinstance(value, torch.Tensor):
        return _tensor_key(value, tensors)
    if isinstance(value, Mapping):
        items = [(repr(k), _freeze(v, tensors)) for k, v in value.items()]
        return ("dict", tuple(sorted(items, key=lambda kv: kv[0])))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v, tensors) for v in value))
    try:
        hash(value)
    except TypeError:
        raise _NotCached from None
    return (type(value), value)


def _result_tensors(result: Any) -> List[torch.Tensor]:
    """The tensors of a result (a dict of parameters, a tuple, a tensor)."""
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, Mapping):
        result = list(result.values())
    if isinstance(result, (list, tuple)):
        return [t for v in result for t in _result_tensors(v)]
    return []


def lru_cache_for_sample_dict():
    """Memoise a method of a distribution (Pixyz applies it to ``get_params``): a call
    with the same inputs, on a module whose parameters have not changed, returns the
    result of the earlier call without running it again.

    The user asks for it by decorating the method, and the memo is bounded: it keeps the
    :func:`cache_maxsize` most recently used results of each instance (20 by default; the
    size is read when the method is decorated, as in Pixyz), and drops them with the
    instance.  It lives on the decorated function, keyed by a weak reference to the
    instance, never on the instance itself.

    A result is never stale.  The key holds the identity, version counter, storage,
    dtype, device and shape of every tensor argument (inside dicts, lists and tuples
    too), of every parameter and buffer of the module and of what the result returned;
    the training mode of each submodule; :func:`torch.is_grad_enabled`, inference mode
    and the validation level; and the other arguments by value.  So an in-place change of
    an input, an optimizer step, ``load_state_dict``, ``.to()``, ``train()``/``eval()``
    or ``torch.no_grad()`` each compute the result afresh.  A call with an unhashable
    argument is not memoised, and neither is a call that reads or returns an inference
    tensor (made under :func:`torch.inference_mode`, which has no version counter to
    see an in-place change by): it runs as without the decorator.  Inside one
    evaluation pixyz_pyro already runs each network once per input (without any
    decorator); this memo also spans calls.

    A memoised result is the same object as before, with the same autograd graph: to
    backpropagate twice through one memoised result (two ``backward`` calls without an
    optimizer step in between), the first needs ``retain_graph=True``, as it would for
    one result used twice.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from pixyz_pyro.dist import Normal
    >>> class Encoder(Normal):
    ...     calls = 0
    ...     def __init__(self):
    ...         super().__init__(var=["z"], cond_var=["x"], name="q")
    ...         self.fc = nn.Linear(2, 2)
    ...     def forward(self, x):
    ...         Encoder.calls += 1
    ...         return {"loc": self.fc(x), "scale": torch.ones_like(x)}
    ...     @lru_cache_for_sample_dict()
    ...     def get_params(self, params_dict=None, **kwargs):
    ...         return super().get_params(params_dict, **kwargs)
    >>> q, x = Encoder(), torch.ones(3, 2)
    >>> a = q.get_params({"x": x})
    >>> q.get_params({"x": x}) is a, Encoder.calls  # the same inputs: memoised
    (True, 1)
    >>> _ = q.sample({"x": x}); Encoder.calls  # sampling goes through get_params
    1
    >>> a["loc"].sum().backward(retain_graph=True)  # the graph is shared:
    >>> q.get_params({"x": x})["loc"].sum().backward()  # keep it for a second backward
    >>> with torch.no_grad():
    ...     q.fc.bias += 1.0  # a step changes the parameters' versions
    >>> q.get_params({"x": x}) is a, Encoder.calls
    (False, 2)
    """
    maxsize = _CACHE_MAXSIZE
    from .dist.validation import get_validation

    def decorate(function):
        if maxsize == 0:
            return function
        caches: Dict[int, Tuple[weakref.ref, "OrderedDict[Any, Tuple]"]] = {}

        def drop(ref: weakref.ref, key: int) -> None:
            slot = caches.get(key)
            if slot is not None and slot[0] is ref:
                del caches[key]

        def entries_of(owner) -> Optional["OrderedDict[Any, Tuple]"]:
            slot = caches.get(id(owner))
            if slot is not None and slot[0]() is owner:
                return slot[1]
            try:
                ref = weakref.ref(owner, functools.partial(drop, key=id(owner)))
            except TypeError:  # no weak references to it: not memoised
                return None
            caches[id(owner)] = (ref, OrderedDict())
            return caches[id(owner)][1]

        @functools.wraps(function)
        def memoised(self, *args, **kwargs):
            tensors: List[torch.Tensor] = []
            try:
                key: Tuple = (_freeze(args, tensors), _freeze(kwargs, tensors))
                state: Tuple = ()
                if isinstance(self, nn.Module):
                    state = (tuple(_tensor_key(t, tensors) for t in self.parameters()),
                             tuple(_tensor_key(t, tensors) for t in self.buffers()),
                             tuple(m.training for m in self.modules()))
            except _NotCached:
                return function(self, *args, **kwargs)
            key = key + (state, torch.is_grad_enabled(),
                         torch.is_inference_mode_enabled(), get_validation())
            entries = entries_of(self)
            if entries is None:
                return function(self, *args, **kwargs)
            hit = entries.get(key)
            if hit is not None:
                refs, outs, result = hit
                if all(r() is t for r, t in zip(refs, tensors)) and \
                        all(r() is not None and r()._version == v for r, v in outs):
                    entries.move_to_end(key)
                    return result
            result = function(self, *args, **kwargs)
            made = _result_tensors(result)
            if any(t.is_inference() for t in made):  # no version counter to check later
                return result
            outs = tuple((weakref.ref(t), t._version) for t in made)
            entries[key] = (tuple(weakref.ref(t) for t in tensors), outs, result)
            entries.move_to_end(key)
            while len(entries) > maxsize:
                entries.popitem(last=False)
            return result

        return memoised

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
