"""``pyro.param`` inside a wrapped function, served from the distribution's own parameters.

A function wrapped with :func:`~pixyz_pyro.infer.from_pyro` runs under
:class:`LocalParams`.  Pyro's global parameter store is neither read nor written:

* ``pyro.param(name, init, constraint)`` creates, on first use, an ``nn.Parameter``
  holding the unconstrained value in the owner's ``nn.ParameterDict`` (so that ``Model``
  and ``.parameters()`` find it) and returns its constrained value, as Pyro's store does;
* ``pyro.module(name, net)`` hands each of the network's own parameters back unchanged:
  they already live in the network;
* ``PyroModule`` parameters (AutoGuides, ``PyroParam``) live in their module; the
  entries a ``PyroModule`` adds to the global store while the function runs are removed
  again when it returns, so the store is left as it was found.
"""
from typing import Any, Dict

import pyro
import torch
from pyro.distributions import constraints
from pyro.poutine.messenger import Messenger
from torch.distributions import transform_to


def param_key(name: str) -> str:
    """``name`` as an ``nn.ParameterDict`` key (no dots)."""
    return name.replace(".", "__").replace("$$$", "__")


class LocalParams(Messenger):
    """Serve ``pyro.param`` from ``params`` (an ``nn.ParameterDict``) and ``constraints``
    (a dict by key), never from Pyro's global store."""

    def __init__(self, params: torch.nn.ParameterDict, constraints_by_key: dict):
        super().__init__()
        self.params = params
        self.constraints = constraints_by_key

    def __enter__(self) -> "LocalParams":
        self._found = set(pyro.get_param_store().keys())
        return super().__enter__()

    def __exit__(self, *args: Any) -> Any:
        try:
            return super().__exit__(*args)
        finally:
            store = pyro.get_param_store()
            for name in [n for n in store.keys() if n not in self._found]:
                del store[name]

    def _pyro_param(self, msg: Dict[str, Any]) -> None:
        if getattr(msg["fn"], "__self__", None) is not pyro.get_param_store():
            return  # a PyroModule's own param statement: its value is already there
        args = msg["args"]
        init = args[1] if len(args) > 1 else msg["kwargs"].get("init_tensor")
        constraint = msg["kwargs"].get("constraint", constraints.real)
        if isinstance(init, torch.nn.Parameter):  # pyro.module: the network's own tensor
            msg["value"] = init
            return
        key = param_key(args[0])
        if key not in self.params:
            if init is None:  # a PyroModule's parameter, which it keeps itself
                return
            if callable(init):
                init = init()
            with torch.no_grad():
                raw = transform_to(constraint).inv(torch.as_tensor(init)).contiguous()
            self.params[key] = torch.nn.Parameter(raw.detach().clone())
            self.constraints[key] = constraint
        value = transform_to(self.constraints[key])(self.params[key])
        msg["value"] = value
