"""A bit-exact snapshot of everything a ``Model`` call may change, for tests that prove
a refused or failed call changed nothing.

:func:`take` records, as plain data:

* every parameter and buffer (persistent or not) of every module reachable from the
  model: its listed distributions, the distributions of its loss and test loss (which
  need not be listed), and a preset's extras (the GAN's discriminator), by name; with
  its dtype, shape, layout, ``requires_grad`` and the *bits* of its values (so that
  ``-0.0 != 0.0`` and NaN payloads count);
* the plain attributes (bools, ints, floats, strings) of the modules that are not
  distributions: networks and transforms, e.g. the "initialized" flag of ``ActNorm``'s
  Pyro transform.  A distribution's own attributes are its configuration and its
  first-call memos, not state;
* every optimizer's state and hyperparameters (the model's, a preset's extras), and the
  identity of the parameters it holds (a load must not swap them for new objects);
* the counters ``step_count`` and ``skipped_steps``;
* optionally (``rng=True``) the torch, Python and NumPy generator states.

:func:`assert_identical` compares two snapshots and names the first entry that differs.

Examples
--------
>>> import torch
>>> from pixyz_pyro.dist import Normal
>>> from pixyz_pyro.loss import LogProb
>>> from pixyz_pyro.model import Model
>>> p = Normal(loc=torch.nn.Parameter(torch.zeros(1)), scale=1., var=["x"])
>>> model = Model(-LogProb(p).mean(), distributions=[p])
>>> before = take(model)
>>> assert_identical(before, take(model))
>>> _ = model.train({"x": torch.ones(2, 1)})
>>> differences(before, take(model))
['parameter p(x)/loc', 'optimizer optimizer', 'counter step_count']
"""
import random
from typing import Dict, Iterable, List

import numpy as np
import torch
from torch import nn

from pixyz_pyro.dist import Distribution

_PLAIN = (bool, int, float, str, type(None))
#: Attributes that are not model state (``Model.train`` and ``test`` set ``training``).
IGNORED_ATTRIBUTES = frozenset({"training"})


def _bits(t: torch.Tensor):
    """Dtype, shape, layout and the exact bits of a tensor's values."""
    t = t.detach()
    head = (str(t.dtype), tuple(t.shape), str(t.layout), str(t.device))
    if t.layout is not torch.strided:
        t = t.to_dense()
    flat = t.cpu().contiguous().reshape(-1)
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
    return head + (flat.view(torch.uint8).clone(),)


def _modules(model) -> List[tuple]:
    """``(label, module)`` for every module the model's calls may reach, once each."""
    roots = [(d.prob_text if hasattr(d, "prob_text") else type(d).__name__, d)
             for d in model.distributions]
    for loss in (getattr(model, "loss_cls", None), getattr(model, "test_loss_cls", None)):
        if loss is not None and hasattr(loss, "distributions"):
            roots += [(getattr(d, "prob_text", type(d).__name__), d)
                      for d in loss.distributions() if isinstance(d, nn.Module)]
    extras = model._checkpoint_extras() if hasattr(model, "_checkpoint_extras") else {}
    roots += [(k, m) for k, m in extras.items() if isinstance(m, nn.Module)]
    out, seen = [], set()
    for label, root in roots:
        for name, m in root.named_modules():
            if id(m) not in seen:
                seen.add(id(m))
                out.append((f"{label}/{name}" if name else label, m))
    return out


def _optimizers(model) -> Dict[str, torch.optim.Optimizer]:
    out = {"optimizer": model.optimizer}
    extras = model._checkpoint_extras() if hasattr(model, "_checkpoint_extras") else {}
    out.update({k: o for k, o in extras.items() if isinstance(o, torch.optim.Optimizer)})
    return out


def _plain(value):
    """Optimizer state and hyperparameters as comparable plain data."""
    if isinstance(value, torch.Tensor):
        return _bits(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def take(model, *more: nn.Module, rng: bool = False) -> Dict[str, object]:
    """Snapshot ``model`` (and the modules ``more``) as plain, comparable data."""
    snap: Dict[str, object] = {}
    mods = _modules(model) + [(f"extra{i}", m) for i, m in enumerate(more)]
    seen = set()
    for label, m in mods:
        for kind, named in (("parameter", m.named_parameters(recurse=False)),
                            ("buffer", m.named_buffers(recurse=False))):
            for name, t in named:
                if id(t) in seen:
                    continue
                seen.add(id(t))
                snap[f"{kind} {label}/{name}"] = _bits(t) + (
                    bool(t.requires_grad),)
        for name, v in ([] if isinstance(m, Distribution) else vars(m).items()):
            if isinstance(v, _PLAIN) and name not in IGNORED_ATTRIBUTES:
                snap[f"attribute {label}.{name}"] = v
    for key, opt in _optimizers(model).items():
        snap[f"optimizer {key}"] = _plain(opt.state_dict())
        snap[f"optimizer {key} holds"] = [[id(p) for p in g["params"]]
                                          for g in opt.param_groups]
    for counter in ("step_count", "skipped_steps"):
        snap[f"counter {counter}"] = getattr(model, counter)
    if rng:
        snap["rng torch"] = _bits(torch.get_rng_state())
        snap["rng python"] = random.getstate()
        state = np.random.get_state()
        snap["rng numpy"] = (state[0], state[1].tobytes()) + tuple(state[2:])
    return snap


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and \
            a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(
            _equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(
            _equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def differences(a: Dict[str, object], b: Dict[str, object]) -> List[str]:
    """The entries of two snapshots that differ (or are in only one)."""
    return [k for k in list(a) + [k for k in b if k not in a]
            if k not in a or k not in b or not _equal(a[k], b[k])]


def assert_identical(a: Dict[str, object], b: Dict[str, object],
                     ignore: Iterable[str] = ()) -> None:
    """Raise ``AssertionError`` naming the first entry that differs, ignoring entries
    that start with one of ``ignore``."""
    ignore = tuple(ignore)
    diff = [k for k in differences(a, b) if not (ignore and k.startswith(ignore))]
    if diff:
        more = f" (and {len(diff) - 1} more: {diff[1:4]})" if len(diff) > 1 else ""
        raise AssertionError(f"{diff[0]} differs{more}")
