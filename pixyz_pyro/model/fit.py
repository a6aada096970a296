"""``fit``: the training loop every example used to write by hand.

One epoch of :func:`fit` is

1. one ``model.train(batch)`` per batch of ``train_data`` (the running loss in a tqdm bar);
2. the test loss over ``test_data``, without gradients (with fixed noise when
   ``test_seed`` is given), and, with ``terms=True``, each top-level term of the test loss,
   keyed by the keys of ``loss.eval(..., return_terms=True)``;
3. the callbacks, in order; one that returns ``True`` stops training after this epoch;
4. TensorBoard scalars in ``log_dir``, if given;
5. a checkpoint through ``model.save`` every ``every`` epochs and after the last one,
   with the history beside it, so that ``resume=True`` continues where it stopped.

Losses are averaged per example: each batch's value is weighted by its batch size (the
length of its first tensor that has a batch dimension).
"""
import json
import os
import sys
import time
import warnings
from collections.abc import Sized
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import torch

from ..errors import ModelError
from . import distributed as _dist
from .checkpoint import atomic_write

if TYPE_CHECKING:
    from .model import Model

Batch = Union[Dict[str, object], torch.Tensor, Sequence[torch.Tensor]]
Callback = Callable[[int, "History"], Optional[bool]]


@dataclass
class History:
    """Per-epoch metrics of :func:`fit`.

    Attributes
    ----------
    metrics : dict of str to list of float
        ``train`` (the mean training loss per example), ``seconds`` (the epoch's training
        time), ``test`` when there is test data, ``train_d_loss``/``test_d_loss`` for a
        GAN, and whatever callbacks add with :meth:`log`.
    terms : dict of str to list of float
        The test loss's top-level terms per epoch (``terms=True``), keyed by the loss's own
        term keys. The keys are opaque strings: show them, do not parse them.
    epochs : int
        Epochs done.
    steps : int
        Optimisation steps done (``model.train`` calls).
    stopped : str, optional
        Why training stopped before ``epochs`` (a callback or ``max_steps``).

    Examples
    --------
    >>> h = History()
    >>> h.log(train=2.5)
    >>> h.metrics["train"], h.epochs
    ([2.5], 0)
    """

    metrics: Dict[str, List[float]] = field(default_factory=dict)
    terms: Dict[str, List[float]] = field(default_factory=dict)
    epochs: int = 0
    steps: int = 0
    stopped: Optional[str] = None

    @property
    def train(self) -> List[float]:
        """The mean training loss of each epoch."""
        return self.metrics.get("train", [])

    @property
    def test(self) -> List[float]:
        """The mean test loss of each epoch (empty without test data)."""
        return self.metrics.get("test", [])

    def __getitem__(self, key: str) -> List[float]:
        return self.metrics[key]

    def log(self, **values: float) -> None:
        """Append one value per name to this epoch's metrics (for callbacks)."""
        for k, v in values.items():
            self.metrics.setdefault(k, []).append(float(v))

    def to_dict(self) -> Dict:
        """Plain data (JSON-ready)."""
        return {"metrics": self.metrics, "terms": self.terms, "epochs": self.epochs,
                "steps": self.steps, "stopped": self.stopped}

    @classmethod
    def from_dict(cls, data: Dict) -> "History":
        return cls(metrics={k: list(v) for k, v in data["metrics"].items()},
                   terms={k: list(v) for k, v in data["terms"].items()},
                   epochs=int(data["epochs"]), steps=int(data["steps"]),
                   stopped=data.get("stopped"))


class EarlyStopping:
    """A :func:`fit` callback: stop when ``monitor`` has not improved for ``patience``
    epochs.

    Parameters
    ----------
    monitor : str
        A metric of the history (``"test"`` by default; ``"train"`` without test data).
    patience : int
        Epochs without an improvement of more than ``min_delta`` that are tolerated.
    min_delta : float
        The smallest decrease that counts as an improvement.

    Examples
    --------
    >>> stop = EarlyStopping(monitor="test", patience=1)
    >>> h = History(metrics={"test": [3.0, 2.0]})
    >>> stop(2, h)
    False
    >>> h.metrics["test"].append(2.5)
    >>> stop(3, h)
    True
    """

    def __init__(self, monitor: str = "test", patience: int = 3, min_delta: float = 0.0):
        if patience < 0:
            raise ModelError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta

    def __call__(self, epoch: int, history: History) -> bool:
        if self.monitor not in history.metrics:
            raise ModelError(f"EarlyStopping monitors {self.monitor!r}, but the history has "
                             f"only {sorted(history.metrics)}")
        best, best_epoch = float("inf"), -1
        for i, v in enumerate(history.metrics[self.monitor]):
            if v < best - self.min_delta:
                best, best_epoch = v, i
        waited = len(history.metrics[self.monitor]) - 1 - best_epoch
        return waited > 0 and waited >= self.patience


def fit(model: "Model", train_data: Iterable, epochs: int, test_data: Optional[Iterable] = None, *,
        to_dict: Optional[Callable[..., Dict]] = None, terms: bool = False,
        test_seed: Optional[int] = None, checkpoint: Optional[Union[str, os.PathLike]] = None,
        every: int = 1, resume: bool = False, progress: bool = True,
        log_dir: Optional[Union[str, os.PathLike]] = None,
        callbacks: Sequence[Callback] = (), max_steps: Optional[int] = None) -> History:
    """Train ``model`` for ``epochs`` epochs over ``train_data``, testing after each.

    Parameters
    ----------
    model : Model
        A :class:`~pixyz_pyro.model.Model` or preset (anything with ``train``, ``test``,
        ``save``, ``load``, ``test_loss_cls`` and ``distributions``).
    train_data : iterable
        Batches, iterated once per epoch: a list, a ``DataLoader``, or a function of no
        arguments returning a fresh iterator. A batch is a dict ``{name: value}``, a tensor
        (for a loss with one input variable), or a tuple/list handed to ``to_dict``.
    epochs : int
        The number of epochs (counting those before a resumed checkpoint).
    test_data : iterable, optional
        Batches for the test loss, evaluated after every epoch.
    to_dict : callable, optional
        Turns a batch that is not a dict into the model's input dict; a tuple/list batch
        is passed unpacked (``to_dict(x, y)``). Used for the test batches too; dict
        batches go to the model as they are.
    terms : bool
        Also record the test loss's top-level terms in ``History.terms``.
    test_seed : int, optional
        Evaluate the test data with the global RNG forked and seeded with this, so every
        epoch is scored with the same noise and the training stream is untouched.
    checkpoint : path, optional
        Save ``model.save(checkpoint)`` every ``every`` epochs and after the last one; the
        history goes to ``<checkpoint>.history.json``.
    every : int
        Epochs between checkpoints.
    resume : bool
        Continue from ``checkpoint`` (parameters, optimizer, RNG and history) when it
        exists; start from scratch when it does not.
    progress : bool
        Show a tqdm bar per epoch (on stderr), with the running loss. Without tqdm installed
        training goes on without it, after one warning.
    log_dir : path, optional
        Write TensorBoard scalars there (``torch.utils.tensorboard``) after each epoch:
        ``loss/train``, ``loss/test``, every other metric as ``metrics/<name>``, and the
        test terms as ``terms/0``, ``terms/1``... (in the order of the loss's term keys,
        which are written once, as text, under ``terms``). Without tensorboard installed
        training goes on without it, after one warning.
    callbacks : sequence of callable
        ``callback(epoch, history)`` after each epoch's test; returning ``True`` stops
        training (see :class:`EarlyStopping`). Callbacks may add metrics with
        ``history.log(name=value)``.
    max_steps : int, optional
        Stop after this many optimisation steps in all.

    Returns
    -------
    History
        The per-epoch metrics.

    Raises
    ------
    ModelError
        If a batch cannot be made into the model's input dict, if ``train_data`` is a
        one-shot iterator, or if a checkpoint to resume does not match its history.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> from pixyz_pyro.model import Model
    >>> p = Normal(loc=torch.nn.Parameter(torch.zeros(1)), scale=1., var=["x"])
    >>> model = Model(-LogProb(p).mean(), distributions=[p], optimizer_params={"lr": 0.1})
    >>> data = [torch.full((8, 1), 3.0)] * 20
    >>> history = fit(model, data, epochs=3, test_data=data[:1], progress=False)
    >>> [round(v, 2) for v in history.test]  # -log N(3 | 3, 1) = log(2 pi) / 2 = 0.92
    [1.55, 0.92, 0.93]
    >>> history.epochs, history.steps
    (3, 60)
    """
    if epochs < 0 or every < 1:
        raise ModelError(f"fit needs epochs >= 0 and every >= 1, got epochs={epochs}, "
                         f"every={every}")
    _check_reiterable(train_data, "train_data")
    if test_data is not None:
        _check_reiterable(test_data, "test_data")
    history = History()
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        history = _resume(model, checkpoint)
    bar_class = _tqdm() if progress else None
    writer = _TensorBoard(log_dir) if log_dir is not None and \
        (getattr(model, "ddp", None) is None or _dist.is_main_process()) else None
    inputs = list(getattr(model.loss_cls, "input_var", []))
    main = getattr(model, "ddp", None) is None or _dist.is_main_process()
    per_epoch = None  # batches per epoch, for the bar when the data has no len()
    for epoch in range(history.epochs + 1, epochs + 1):
        start = time.perf_counter()
        batches = train_data() if callable(train_data) else train_data
        total = len(batches) if isinstance(batches, Sized) else per_epoch
        bar = None if bar_class is None else bar_class(
            total=total, desc=f"epoch {epoch}/{epochs}", file=sys.stderr, leave=True)
        sums: Dict[str, torch.Tensor] = {}  # running sums of the batch losses
        seen, steps = 0, history.steps
        for batch in batches:
            x = _as_dict(batch, to_dict, inputs, "train_data")
            out = model.train(x)
            n = _batch_size(x)
            for name, value in _named(out, "train"):
                sums[name] = sums.get(name, 0.0) + value.detach() * n
            seen += n
            history.steps += 1
            if bar is not None:
                bar.update(1)
                if history.steps % 10 == 0:
                    bar.set_postfix(loss=f"{float(sums['train']) / seen:.4g}")
            if max_steps is not None and history.steps >= max_steps:
                history.stopped = f"max_steps={max_steps} reached"
                break
        sync = getattr(model, "sync", None)
        if sync is not None:  # check_every's pending steps, reported in their epoch
            sync()
        if history.stopped is None:
            per_epoch = history.steps - steps
        if seen == 0:
            raise ModelError(f"train_data gave no batches in epoch {epoch}; a function "
                             f"passed as train_data must return a fresh iterator each call")
        history.log(**{k: float(v) / max(seen, 1) for k, v in sums.items()})
        history.log(seconds=time.perf_counter() - start)
        if test_data is not None:
            _test(model, test_data, to_dict, inputs, terms, test_seed, history)
        if bar is not None:
            bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.metrics.items()
                             if k in ("train", "test")})
            bar.close()
        history.epochs = epoch
        for callback in callbacks:
            if callback(epoch, history):
                history.stopped = f"stopped by {_name(callback)} after epoch {epoch}"
        if writer is not None:
            writer.write(epoch, history)
        last = epoch == epochs or history.stopped is not None
        if checkpoint is not None and (epoch % every == 0 or last):
            model.save(os.fspath(checkpoint))
            if main:
                _write_json(history.to_dict() | {"step_count": model.step_count},
                            _history_path(checkpoint))
        if history.stopped is not None:
            break
    if writer is not None:
        writer.close()
    return history


# --- one epoch's pieces --------------------------------------------------------------------
def _test(model: "Model", test_data: Iterable, to_dict: Optional[Callable[..., Dict]],
          inputs: List[str], terms: bool, seed: Optional[int], history: History) -> None:
    """Mean test loss (and terms) per example, appended to ``history``."""
    sums: Dict[str, float] = {}
    term_sums: Dict[str, float] = {}
    seen = 0
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        batches = test_data() if callable(test_data) else test_data
        for batch in batches:
            x = _as_dict(batch, to_dict, inputs, "test_data")
            n = _batch_size(x)
            if terms:
                model.distributions.eval()
                with torch.no_grad():
                    value, parts = model.test_loss_cls.eval(x, return_terms=True)
                out = value
                for key, t in parts.items():
                    term_sums[key] = term_sums.get(key, 0.0) + \
                        float(torch.as_tensor(t).mean()) * n
            else:
                out = model.test(x)
            for name, value in _named(out, "test"):
                sums[name] = sums.get(name, 0.0) + float(value) * n
            seen += n
    history.log(**{k: v / max(seen, 1) for k, v in sums.items()})
    for key, v in term_sums.items():
        history.terms.setdefault(key, []).append(v / max(seen, 1))


def _named(out: object, prefix: str) -> List[Tuple[str, Any]]:
    """``[(name, tensor)]`` of what ``train``/``test`` returned: the loss, and for a tuple
    (a GAN's ``(loss, d_loss)``) the others as ``<prefix>_d_loss`` (or ``_2``, ``_3``...)."""
    if not isinstance(out, tuple):
        return [(prefix, out)]
    names = [prefix] + ([f"{prefix}_d_loss"] if len(out) == 2 else
                        [f"{prefix}_{i + 1}" for i in range(1, len(out))])
    return [(n, v) for n, v in zip(names, out) if v is not None]


def _as_dict(batch: object, to_dict: Optional[Callable[..., Dict]], inputs: List[str],
             where: str) -> Dict:
    if isinstance(batch, dict):
        return batch
    if to_dict is not None:
        return to_dict(*batch) if isinstance(batch, (tuple, list)) else to_dict(batch)
    if isinstance(batch, torch.Tensor):
        if len(inputs) != 1:
            raise ModelError(f"{where} gave a tensor batch, but the loss takes the inputs "
                             f"{inputs}; give batches as dicts or pass to_dict=...")
        return {inputs[0]: batch}
    raise ModelError(f"{where} gave a batch of type {type(batch).__name__}; fit takes dicts "
                     f"{{name: tensor}} or tensors, or pass to_dict=... to turn it into the "
                     f"loss's inputs {inputs}")


def _batch_size(x: Dict) -> int:
    """The length of the first input with a batch dimension (1 if there is none)."""
    for v in x.values():
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            return int(v.shape[0])
    return 1


def _check_reiterable(data: Union[Iterable, Callable[[], Iterable]], what: str) -> None:
    if not callable(data) and iter(data) is data:
        raise ModelError(f"fit iterates {what} once per epoch, but it is a one-shot iterator "
                         f"({type(data).__name__}); pass a list, a DataLoader, or a function "
                         f"that returns a fresh iterator")


def _tqdm() -> Optional[Callable[..., Any]]:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn("fit: tqdm is not installed, so there is no progress bar "
                      "(pip install tqdm, or pass progress=False)", stacklevel=3)
        return None
    return tqdm


class _TensorBoard:
    """Per-epoch scalars of a history in a ``SummaryWriter`` (nothing without
    tensorboard, after one warning)."""

    def __init__(self, log_dir: Union[str, os.PathLike]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            warnings.warn("fit: tensorboard is not installed, so nothing is written to "
                          f"log_dir={os.fspath(log_dir)!r} (pip install tensorboard)",
                          stacklevel=3)
            self.writer = None
        else:
            self.writer = SummaryWriter(os.fspath(log_dir))
        self.term_keys: List[str] = []

    def write(self, epoch: int, history: History) -> None:
        if self.writer is None:
            return
        for name, values in history.metrics.items():
            tag = f"loss/{name}" if name in ("train", "test") else f"metrics/{name}"
            self.writer.add_scalar(tag, values[-1], epoch)
        new = [k for k in history.terms if k not in self.term_keys]
        if new:
            self.term_keys += new
            self.writer.add_text("terms", "\n\n".join(
                f"terms/{i}: `{k}`" for i, k in enumerate(self.term_keys)), epoch)
        for i, key in enumerate(self.term_keys):
            if history.terms.get(key):
                self.writer.add_scalar(f"terms/{i}", history.terms[key][-1], epoch)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _name(callback: object) -> str:
    return getattr(callback, "__name__", type(callback).__name__)


# --- checkpoints ---------------------------------------------------------------------------
def _history_path(checkpoint: Union[str, os.PathLike]) -> str:
    return os.fspath(checkpoint) + ".history.json"


def _write_json(data: Dict, path: str) -> None:
    """Write JSON atomically (:func:`~pixyz_pyro.model.checkpoint.atomic_write`)."""
    atomic_write(path, lambda f: json.dump(data, f), binary=False, suffix=".json")


def _resume(model: "Model", checkpoint: Union[str, os.PathLike]) -> History:
    """Load ``checkpoint`` into ``model`` and return the history saved beside it."""
    path = _history_path(checkpoint)
    if not os.path.exists(path):
        raise ModelError(f"cannot resume from {os.fspath(checkpoint)!r}: it has no history "
                         f"file {path!r} (it was not written by fit)")
    with open(path) as f:
        data = json.load(f)
    model.load(os.fspath(checkpoint))
    if data.get("step_count") != model.step_count:
        raise ModelError(f"cannot resume: {os.fspath(checkpoint)!r} is at step "
                         f"{model.step_count}, its history {path!r} at step "
                         f"{data.get('step_count')}; they were not written together")
    history = History.from_dict(data)
    history.stopped = None
    return history
