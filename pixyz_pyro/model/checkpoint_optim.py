"""Check an optimizer state from a checkpoint against the model's optimizer.

``torch.optim.Optimizer.load_state_dict`` checks only the number of parameters per
group.  A state missing an entry (Adam without ``exp_avg_sq``), with an entry of the
wrong shape or dtype, or with hyperparameters of the wrong kind loads silently and fails
-- or trains wrongly -- at the next step.  :func:`check_optimizer_state` refuses such a
state up front:

1. the optimizer class is the model's (by name, when the file records it);
2. the parameter groups have the model's sizes, their ids are unique integers, and every
   state entry belongs to one of them;
3. the hyperparameters are the model's keys, each of the same kind (a number, a flag, a
   tuple of numbers of one length), numbers finite;
4. each parameter's state has exactly the entries, dtypes and shapes that the model's
   optimizer class, built with the file's hyperparameters, produces in one step on
   zero gradients (a *trial step* on zero copies of the parameters; the model's own
   optimizer is not touched).

Examples
--------
>>> import torch
>>> w = torch.nn.Parameter(torch.ones(2))
>>> opt = torch.optim.Adam([w])
>>> w.grad = torch.ones(2); opt.step()
>>> state = opt.state_dict()
>>> check_optimizer_state(opt, state, "Adam", "the optimizer", "ckpt.pt")
>>> del state["state"][0]["exp_avg_sq"]
>>> try:
...     check_optimizer_state(opt, state, "Adam", "the optimizer", "ckpt.pt")
... except CheckpointError as e:
...     print(str(e).split("; ")[1])
Adam keeps ['exp_avg', 'exp_avg_sq', 'step']
"""
import math
import numbers
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple, Union

import torch

from ..errors import CheckpointError

#: Group entries that schedulers add (``LRScheduler`` sets ``initial_lr``).
_SCHEDULER_KEYS = frozenset({"initial_lr"})


def _kind(v: object) -> Union[str, type]:
    """What a hyperparameter must stay: a number, a flag (bool or None), a tuple of
    numbers of one length, a string, or exactly its type."""
    if v is None or isinstance(v, bool):
        return "a flag"
    if isinstance(v, numbers.Real) or (isinstance(v, torch.Tensor) and v.dim() == 0):
        return "a number"
    if isinstance(v, (tuple, list)):
        kinds = {_kind(x) for x in v}
        return f"a sequence of {len(v)} numbers" if kinds <= {"a number"} else \
            f"a sequence of {len(v)} items"
    if isinstance(v, str):
        return "a string"
    return type(v).__name__


def _finite(v: object) -> bool:
    if isinstance(v, torch.Tensor):
        return bool(torch.isfinite(v).all())
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return math.isfinite(v)
    if isinstance(v, (tuple, list)):
        return all(_finite(x) for x in v)
    return True


def _check_groups(optimizer: torch.optim.Optimizer, groups: Any, what: str, path: str
                  ) -> List[List[int]]:
    """Steps 2 and 3; the file's parameter ids, group by group."""
    name = type(optimizer).__name__
    ours = optimizer.param_groups
    if not isinstance(groups, (list, tuple)) or not all(
            isinstance(g, Mapping) and isinstance(g.get("params"), (list, tuple))
            for g in groups):
        raise CheckpointError(f"{path!r}: the param_groups of {what} are not a list of "
                              f"groups with a 'params' list")
    sizes = [len(g["params"]) for g in groups]
    our_sizes = [len(g["params"]) for g in ours]
    if sizes != our_sizes:
        raise CheckpointError(f"{path!r}: {what} has parameter groups of sizes {sizes} in "
                              f"the file, {our_sizes} in the model ({name})")
    ids = [list(g["params"]) for g in groups]
    flat = [i for g in ids for i in g]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in flat) \
            or len(set(flat)) != len(flat):
        raise CheckpointError(f"{path!r}: the parameter ids of {what} are not unique "
                              f"integers: {flat}")
    for gi, (g, og) in enumerate(zip(groups, ours)):
        keys = set(g) - {"params"}
        unknown = sorted(keys - set(og) - _SCHEDULER_KEYS)
        if unknown:
            raise CheckpointError(f"{path!r}: {what} group {gi} has the hyperparameters "
                                  f"{unknown} in the file, which {name} does not have")
        for k in sorted(keys & set(og) - {"params"}):
            if _kind(g[k]) != _kind(og[k]):
                raise CheckpointError(
                    f"{path!r}: {what} group {gi} has {k}={g[k]!r} in the file, which is "
                    f"not {_kind(og[k])} like the model's {k}={og[k]!r}")
            if not _finite(g[k]):
                raise CheckpointError(f"{path!r}: {what} group {gi} has the non-finite "
                                      f"{k}={g[k]!r} in the file")
    return ids


def _trial_states(optimizer: torch.optim.Optimizer, groups: Sequence[Dict]
                  ) -> List[List[Tuple[Dict, Dict]]]:
    """Step 4's reference: the states (before and after one step) of a fresh optimizer
    of the model's class, with the file's hyperparameters, over zero copies of the
    model's parameters, per group and parameter."""
    dummies = [[torch.zeros_like(p, requires_grad=True) for p in og["params"]]
               for og in optimizer.param_groups]
    make: Callable[..., torch.optim.Optimizer] = type(optimizer)  # a subclass: no defaults
    trial = make([{**{k: v for k, v in g.items() if k != "params"}, "params": d}
                  for g, d in zip(groups, dummies)])
    before = [[dict(trial.state.get(p, {})) for p in d] for d in dummies]
    for d in dummies:
        for p in d:
            p.grad = torch.zeros_like(p)
    trial.step()
    after = [[dict(trial.state.get(p, {})) for p in d] for d in dummies]
    return [[(b, a) for b, a in zip(gb, ga)] for gb, ga in zip(before, after)]


def _entry_problem(key: object, got: Any, ref: Any) -> str:
    if isinstance(ref, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{key!r} is {type(got).__name__} in the file, a tensor in the model"
        if got.layout is not torch.strided or got.is_quantized:
            return f"{key!r} is a {got.layout} tensor in the file; only dense tensors load"
        if got.dtype != ref.dtype:
            return f"{key!r} has dtype {got.dtype} in the file, {ref.dtype} in the model"
        if got.shape != ref.shape:
            return (f"{key!r} has shape {tuple(got.shape)} in the file, but its parameter "
                    f"has shape {tuple(ref.shape)} in the model" if ref.dim() else
                    f"{key!r} has shape {tuple(got.shape)} in the file, () in the model")
        return ""
    if _kind(got) != _kind(ref):
        return f"{key!r} is {got!r} in the file, not {_kind(ref)}"
    return ""


def check_optimizer_state(optimizer: torch.optim.Optimizer, state: Any, saved_class: object,
                          what: str,
                          path: str) -> None:
    """Raise :class:`CheckpointError` unless ``state`` is a state of ``optimizer``'s class
    over parameters of the same shapes, entry for entry (see the module's steps)."""
    name = type(optimizer).__name__
    if saved_class is not None and saved_class != name:
        raise CheckpointError(f"{path!r}: {what} was {saved_class} in the file, {name} in "
                              f"the model")
    if not isinstance(state, Mapping) or "param_groups" not in state or "state" not in state \
            or not isinstance(state["state"], Mapping):
        raise CheckpointError(f"{path!r}: {what} is not an optimizer state dict")
    ids = _check_groups(optimizer, state["param_groups"], what, path)
    known = {i for g in ids for i in g}
    stray = sorted(str(k) for k in state["state"] if k not in known)
    if stray:
        raise CheckpointError(f"{path!r}: {what} has state for the parameter ids {stray}, "
                              f"which are in none of its groups")
    try:
        trial = _trial_states(optimizer, state["param_groups"])
    except Exception as e:  # noqa: BLE001 - the file's hyperparameters are unusable
        raise CheckpointError(f"{path!r}: {what} cannot run {name} with the "
                              f"hyperparameters in the file ({type(e).__name__}: {e})") \
            from None
    for gi, (g_ids, g_trial) in enumerate(zip(ids, trial)):
        for pid, (before, after) in zip(g_ids, g_trial):
            entry = state["state"].get(pid)
            if entry is None:
                if before:
                    raise CheckpointError(
                        f"{path!r}: {what} has no state for parameter {pid} (group {gi}) "
                        f"in the file; {name} keeps {sorted(before)} from the start")
                continue
            if not isinstance(entry, Mapping):
                raise CheckpointError(f"{path!r}: the {what} state of parameter {pid} is "
                                      f"{type(entry).__name__}, not a dict")
            ref = after if set(entry) == set(after) or not before else before
            if set(entry) != set(ref):
                raise CheckpointError(
                    f"{path!r}: {what} state of parameter {pid} (group {gi}) has the "
                    f"entries {sorted(map(str, entry))} in the file; {name} keeps "
                    f"{sorted(ref)}")
            for k in sorted(ref):
                problem = _entry_problem(k, entry[k], ref[k])
                if problem:
                    raise CheckpointError(f"{path!r}: {what} state of parameter {pid} "
                                          f"(group {gi}): {problem}")
