"""Data-parallel training on ``torch.distributed``: DDP over a Model's distributions.

With :math:`N` processes ("ranks"), each holding the same parameters :math:`\\theta` and
its own shard :math:`B_r` of every batch :math:`B`, one :meth:`Model.train` step is

1. every rank evaluates its loss :math:`L_r(\\theta)` inside
   ``DistributedDataParallel.forward`` (the Model's distributions are the wrapped module);
2. ``backward`` computes :math:`\\nabla_\\theta L_r` and DDP all-reduces each gradient
   once, in buckets that overlap with backward (one bucket for a small model), leaving on
   every rank

   .. math::

       g = \\frac{1}{N} \\sum_{r=1}^{N} \\nabla_\\theta L_r(\\theta);

3. every rank steps the same optimizer on the same :math:`g`, so the parameters stay equal.

When the loss is a batch mean (``loss.mean()``) and the shards have equal sizes,
:math:`\\frac{1}{N}\\sum_r L_r = L` on the whole batch, so :math:`g = \\nabla_\\theta L`:
N processes train exactly like one process on the full batch.  DDP broadcasts rank 0's
parameters and buffers when it is built, so the ranks start equal whatever their seeds.

Backends: ``gloo`` on CPU, ``nccl`` on CUDA (:func:`backend_for`).  Only rank 0 writes
checkpoints (:meth:`Model.save`) and pictures (:func:`is_main_process`).
"""
import datetime
import os
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Union

import torch
from torch import nn

from ..errors import DistributedError

#: Environment variables that ``torchrun`` sets for every worker.
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def backend_for(device: Union[str, torch.device]) -> str:
    """``"nccl"`` for a CUDA device, ``"gloo"`` otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def is_initialized() -> bool:
    """Whether a default process group exists in this process."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def get_rank() -> int:
    """This process's rank, 0 without a process group."""
    return torch.distributed.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    """The number of processes, 1 without a process group."""
    return torch.distributed.get_world_size() if is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0 (and without a process group): the process that writes files."""
    return get_rank() == 0


def launched_by_torchrun() -> bool:
    """Whether ``torchrun`` (or an equivalent launcher) set the rendezvous variables."""
    return all(k in os.environ for k in TORCHRUN_ENV)


def init_from_env(device: Union[str, torch.device] = "cpu", timeout: float = 300.0
                  ) -> Tuple[int, int, int]:
    """Join the process group that ``torchrun`` describes in the environment.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"`` uses gloo; ``"cuda"`` uses nccl and selects ``cuda:LOCAL_RANK``.
    timeout : float
        Seconds a collective may wait for the other ranks before it fails, so a rank
        that died never leaves the others hanging forever.

    Returns
    -------
    (rank, world_size, local_rank)
    """
    if not is_initialized():
        missing = [k for k in TORCHRUN_ENV if k not in os.environ]
        if missing:
            raise DistributedError(
                f"distributed training needs a launcher: the environment lacks {missing}. "
                f"Start with `torchrun --nproc_per_node=N ...` (see docs/distributed.md)")
        backend = backend_for(device)
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        extra: Dict[str, Any] = {}  # keyword arguments of init_process_group
        if backend == "nccl":  # bind this rank to its GPU (no guessing, no warning)
            torch.cuda.set_device(local_rank)
            extra["device_id"] = torch.device("cuda", local_rank)
        torch.distributed.init_process_group(
            backend, timeout=datetime.timedelta(seconds=timeout), **extra)
    return get_rank(), get_world_size(), int(os.environ.get("LOCAL_RANK", 0))


def resolve(distributed: Optional[bool], device: Union[str, torch.device]) -> bool:
    """Decide whether a Model trains data-parallel.

    ``None`` means "yes when a process group is initialised".  ``True`` joins the
    ``torchrun`` group if none exists yet, and is an error without one.
    """
    if distributed is None:
        return is_initialized()
    if not distributed:
        return False
    if not is_initialized():
        if not launched_by_torchrun():
            raise DistributedError(
                "Model(distributed=True) needs torch.distributed: call "
                "torch.distributed.init_process_group(...) first, or start the script with "
                "`torchrun --nproc_per_node=N ...` (see docs/distributed.md)")
        init_from_env(device)
    return True


class _LossModule(nn.Module):
    """The module DDP wraps: the Model's distributions, and a forward that evaluates the
    loss function it is given (so the loss algebra stays outside DDP)."""

    def __init__(self, distributions: nn.ModuleList):
        super().__init__()
        self.distributions = distributions

    def forward(self, fn: Callable, x_dict: Optional[Dict], kwargs: Dict) -> Any:
        return fn(x_dict, kwargs)


def data_parallel(distributions: nn.ModuleList, distributed: Optional[bool]
                  ) -> Optional[nn.Module]:
    """Wrap ``distributions`` in ``DistributedDataParallel``, or return ``None``.

    The returned callable evaluates ``fn(x_dict, kwargs)`` under DDP, so that the next
    ``backward`` averages the gradients over the ranks.  ``static_graph=True``: a Model
    trains the same loss at every step, and parameters that the loss never reaches (an
    encoder behind a non-reparameterised sample, say) are handled, not an error.
    """
    params = [p for p in distributions.parameters() if p.requires_grad]
    device = params[0].device if params else torch.device("cpu")
    if not resolve(distributed, device):
        return None
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(_LossModule(distributions), device_ids=None,
                                   static_graph=True)


def average_across_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over all ranks (one all-reduce), on every rank.

    .. math:: \\bar v = \\frac{1}{N} \\sum_{r=1}^{N} v_r
    """
    if not is_initialized():
        return value
    out = value.detach().clone()
    torch.distributed.all_reduce(out)
    return out.div_(get_world_size())


def broadcast_from_rank0(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers into ``module`` on every rank (what DDP does
    when it is built), for modules trained outside DDP such as a GAN's discriminator."""
    if not is_initialized():
        return
    with torch.no_grad():
        for t in module.state_dict().values():
            torch.distributed.broadcast(t, src=0)


def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Average the gradients of ``params`` over the ranks in one flattened all-reduce,
    for parameters trained outside DDP (a GAN's discriminator).  Parameters without a
    gradient are left alone; the ranks must agree on which those are.

    .. math:: g \\leftarrow \\frac{1}{N} \\sum_{r=1}^{N} g_r
    """
    if not is_initialized():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat.div_(get_world_size())
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
