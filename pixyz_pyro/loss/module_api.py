"""The ``nn.Module`` side of a loss: ``.to``, ``.parameters()``, ``.train()``, ``state_dict``.

In Pixyz a loss is an ``nn.Module``, and code moves it (``loss.to(device)``), collects
its parameters (a discriminator's), switches modes and saves it.  Here loss nodes are
frozen data, so :class:`ModuleAPI` holds no state: each method finds the modules the
expression holds and delegates to them.

The modules of a loss are found by walking the expression: every node reached through
``children`` (and through node attributes that are losses), and, for each node, its
``distributions()`` and the node attributes that are ``nn.Module`` s (a discriminator).
They are listed once each, in the order found; a module inside another listed module
(a factor of a listed joint) is reached through that one, so it is not listed again.

``Loss.eval`` stays the *evaluation* of the loss, as in Pixyz; it is not
``nn.Module.eval``.  Use ``loss.train(False)`` for evaluation mode.

Tensors stored in the nodes themselves (constants such as ``ValueLoss(torch.tensor(2.))``)
are not moved by ``.to``; zero-dimensional constants broadcast on any device.

Examples
--------
>>> import torch
>>> from pixyz_pyro.dist import Normal
>>> class Enc(Normal):
...     def __init__(self):
...         super().__init__(var=["z"], cond_var=["x"], name="q")
...         self.net = torch.nn.Linear(2, 2)
...     def forward(self, x):
...         return {"loc": self.net(x), "scale": torch.ones_like(x)}
>>> class Node(ModuleAPI):   # stands for a loss node: it has children and distributions
...     children = ()
...     def __init__(self, q):
...         self.q = q
...     def distributions(self):
...         return [self.q]
>>> loss = Node(Enc())
>>> [tuple(w.shape) for w in loss.parameters()]
[(2, 2), (2,)]
>>> loss.train(False).q.training
False
>>> sorted(loss.state_dict())
['0.net.bias', '0.net.weight']
"""
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, TypeVar, Union

import torch
from torch import nn


def held_modules(loss: object) -> List[nn.Module]:
    """The top-level ``nn.Module`` s that ``loss`` holds, in the order found."""
    found: List[nn.Module] = []
    seen_nodes = set()
    stack = [loss]
    while stack:
        node = stack.pop(0)
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        candidates = list(node.distributions()) if hasattr(node, "distributions") else []
        for value in vars(node).values():
            if isinstance(value, nn.Module):
                candidates.append(value)
            elif _is_loss(value):
                stack.append(value)
        for m in candidates:
            if isinstance(m, nn.Module) and all(m is not o for o in found):
                found.append(m)
        stack.extend(getattr(node, "children", ()))
    inner: Set[int] = set()
    for m in found:
        inner.update(id(s) for s in m.modules() if s is not m)
    return [m for m in found if id(m) not in inner]


@contextmanager
def evaluation_mode(loss: object) -> Iterator[None]:
    """Every module that ``loss`` holds in eval mode, without gradients, for the block;
    each module's mode is restored after it (``loss.eval(test_mode=True)``)."""
    modes = [(m, m.training) for top in held_modules(loss) for m in top.modules()]
    for m, _ in modes:
        m.training = False
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in modes:
            m.training = mode


def _is_loss(value: object) -> bool:
    return hasattr(value, "children") and hasattr(value, "distributions") \
        and not isinstance(value, nn.Module)


_L = TypeVar("_L", bound="ModuleAPI")


class ModuleAPI:
    """``nn.Module`` methods for loss expressions, delegated to the modules they hold
    (see the module docstring).  No method sets an attribute on the loss."""

    def modules(self) -> Iterator[nn.Module]:
        """The top-level modules the loss holds (distributions, discriminators)."""
        return iter(held_modules(self))

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[Tuple[str, nn.Parameter]]:
        """``("{i}.{name}", parameter)`` over the held modules, each parameter once."""
        seen = set()
        for i, m in enumerate(held_modules(self)):
            for name, w in m.named_parameters(recurse=recurse):
                if id(w) not in seen:
                    seen.add(id(w))
                    yield f"{prefix}{i}.{name}", w

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """Every parameter of the held modules, each once."""
        for _, w in self.named_parameters(recurse=recurse):
            yield w

    def to(self: _L, *args: Any, **kwargs: Any) -> _L:
        """Move (or cast) every held module, as ``nn.Module.to``; returns the loss."""
        for m in held_modules(self):
            m.to(*args, **kwargs)
        return self

    def cuda(self: _L, device: Optional[Union[int, torch.device]] = None) -> _L:
        for m in held_modules(self):
            m.cuda(device)
        return self

    def cpu(self: _L) -> _L:
        for m in held_modules(self):
            m.cpu()
        return self

    def train(self: _L, mode: bool = True) -> _L:
        """Set training mode on every held module; returns the loss.  (``loss.eval`` is
        the loss's evaluation, as in Pixyz: use ``train(False)`` for evaluation mode.)"""
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode) takes a bool, got {mode!r}")
        for m in held_modules(self):
            m.train(mode)
        return self

    @property
    def training(self) -> bool:
        """Whether every held module is in training mode."""
        return all(m.training for m in held_modules(self))

    def requires_grad_(self: _L, requires_grad: bool = True) -> _L:
        for m in held_modules(self):
            m.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for m in held_modules(self):
            m.zero_grad(set_to_none=set_to_none)

    def apply(self: _L, fn: Callable[[nn.Module], None]) -> _L:
        for m in held_modules(self):
            m.apply(fn)
        return self

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> Dict[str, torch.Tensor]:
        """``{"{i}.{key}": tensor}`` over the held modules, in the order found."""
        out: Dict[str, torch.Tensor] = OrderedDict()
        for i, m in enumerate(held_modules(self)):
            out.update(m.state_dict(prefix=f"{prefix}{i}.", keep_vars=keep_vars))
        return out

    def load_state_dict(self, state_dict: Dict[str, torch.Tensor], strict: bool = True) -> Any:
        """Load a :meth:`state_dict` of a loss of the same structure."""
        modules = held_modules(self)
        parts: List[Dict[str, torch.Tensor]] = [OrderedDict() for _ in modules]
        unexpected = []
        for key, value in state_dict.items():
            head, _, rest = key.partition(".")
            if head.isdigit() and int(head) < len(modules) and rest:
                parts[int(head)][rest] = value
            else:
                unexpected.append(key)
        if strict and unexpected:
            raise KeyError(f"load_state_dict: keys {unexpected} match none of the loss's "
                           f"{len(modules)} modules (keys look like '0.net.weight')")
        missing: List[str] = []
        for i, (m, part) in enumerate(zip(modules, parts)):
            res = m.load_state_dict(part, strict=strict)
            missing.extend(f"{i}.{k}" for k in res.missing_keys)
            unexpected.extend(f"{i}.{k}" for k in res.unexpected_keys)
        return nn.modules.module._IncompatibleKeys(missing, unexpected)
