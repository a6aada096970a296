"""Pixyz's helpers for dicts of samples and printing (``pixyz.utils``)."""
from typing import Dict, List, Sequence, Union

import torch

_EPSILON = 1e-7


def set_epsilon(eps: float) -> None:
    """Kept for Pixyz compatibility; pixyz_pyro's families are numerically safe without it."""
    raise NotImplementedError("pixyz_pyro has no global epsilon (no global state); the "
                              "families use pyro.distributions' stable parametrisations")


def epsilon() -> float:
    return _EPSILON


def tolist(a) -> list:
    """``a`` as a list (a string or a single item becomes a one-item list)."""
    if isinstance(a, (list, tuple)):
        return list(a)
    return [a]


def get_dict_values(dicts: Dict, keys: Union[str, Sequence[str]], return_dict: bool = False):
    """The values of ``keys`` in ``dicts`` (a list, or a dict with ``return_dict``); missing
    keys are skipped, as in Pixyz."""
    keys = tolist(keys)
    present = [k for k in keys if k in dicts]
    if return_dict:
        return {k: dicts[k] for k in present}
    return [dicts[k] for k in present]


def delete_dict_values(dicts: Dict, keys: Union[str, Sequence[str]]) -> Dict:
    """A copy of ``dicts`` without ``keys``."""
    keys = set(tolist(keys))
    return {k: v for k, v in dicts.items() if k not in keys}


def detach_dict(dicts: Dict) -> Dict:
    """A copy of ``dicts`` with every tensor detached."""
    return {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in dicts.items()}


def replace_dict_keys(dicts: Dict, replace_list_dict: Dict[str, str]) -> Dict:
    """A copy of ``dicts`` with keys renamed by ``replace_list_dict``."""
    return {replace_list_dict.get(k, k): v for k, v in dicts.items()}


def replace_dict_keys_split(dicts: Dict, replace_list_dict: Dict[str, str]):
    """``(renamed, rest)``: the renamed entries and the others."""
    renamed = {replace_list_dict[k]: v for k, v in dicts.items() if k in replace_list_dict}
    rest = {k: v for k, v in dicts.items() if k not in replace_list_dict}
    return renamed, rest


def sum_samples(samples: torch.Tensor, sum_dims=None) -> torch.Tensor:
    """Sum every dimension but the first (or ``sum_dims``)."""
    if sum_dims is not None:
        return samples.sum(dim=sum_dims)
    if samples.dim() <= 1:
        return samples
    return samples.sum(dim=tuple(range(1, samples.dim())))


def convert_latex_name(name: str) -> str:
    from .dist.naming import latex_name
    return latex_name(name)


def print_latex(obj):
    """Render a loss, a distribution or a model as LaTeX (IPython ``Math`` when available)."""
    from .loss.latex import print_latex as _print_latex
    if hasattr(obj, "loss_cls"):
        obj = obj.loss_cls
    return _print_latex(obj)


__all__: List[str] = [
    "tolist", "get_dict_values", "delete_dict_values", "detach_dict", "replace_dict_keys",
    "replace_dict_keys_split", "sum_samples", "print_latex", "convert_latex_name", "epsilon",
    "set_epsilon",
]
