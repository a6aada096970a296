"""Small pieces the image examples share: MLPs, one-hot labels, the training loop, names.

The examples keep their distributions in the Pixyz style (a class per distribution whose
``forward`` returns the parameters); what is the same in every script lives here:

* :func:`mlp` builds ``Linear - ReLU - ... - Linear`` stacks;
* :func:`one_hot` turns integer labels into the one-hot floats ``Categorical`` scores;
* :func:`run_epoch` is the training loop over an iterator of batches (one ``Model.train``
  per batch), so a data-parallel version only has to hand it a sharded iterator;
* :func:`epoch_report` is the :func:`pixyz_pyro.model.fit` callback that logs and prints
  one line per epoch, and :func:`metrics_of` turns fit's history into the metrics dict;
* :func:`evaluate` averages a loss and its top-level terms over a dataset, with fixed noise.
"""
import sys
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from examples.common import progress, stop_early
from examples.data import load_dataset, resolve_name

X_DIM = 784


def mlp(sizes: Sequence[int], activation: Callable[[], nn.Module] = nn.ReLU,
        last: Optional[nn.Module] = None) -> nn.Sequential:
    """``Linear(sizes[0], sizes[1]) - act - ... - Linear(sizes[-2], sizes[-1])``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first.
    activation : callable
        Builds the activation put after every layer but the last.
    last : nn.Module, optional
        Appended after the last layer (``nn.Sigmoid()`` for Bernoulli probabilities).

    Examples
    --------
    >>> mlp([784, 400, 20])
    Sequential(
      (0): Linear(in_features=784, out_features=400, bias=True)
      (1): ReLU()
      (2): Linear(in_features=400, out_features=20, bias=True)
    )
    """
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    if last is not None:
        layers.append(last)
    return nn.Sequential(*layers)


def one_hot(y: torch.Tensor, n: int = 10) -> torch.Tensor:
    """Integer labels ``(B,)`` as float one-hot rows ``(B, n)``.

    >>> one_hot(torch.tensor([2, 0]), 3)
    tensor([[0., 0., 1.],
            [1., 0., 0.]])
    """
    return F.one_hot(y, n).to(torch.get_default_dtype())


def load_data(args, bernoulli: bool = True
              ) -> Tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``dataset, x_train, y_train, x_test, y_test`` on ``args.device``, after any fallback
    to mnist-5k; prints one line saying what was loaded (and, with ``bernoulli``, how the
    grey levels are scored)."""
    dataset = resolve_name(args.dataset, args.data_dir)
    x_train, y_train = load_dataset(args.dataset, "train", args.data_dir, args.limit)
    x_test, y_test = load_dataset(args.dataset, "test", args.data_dir, args.test_limit)
    note = " (a Bernoulli scores them as binary cross-entropy)" if bernoulli else ""
    print(f"{dataset}: {len(x_train)} train / {len(x_test)} test images, grey levels in "
          f"[0, 1]{note}; threads={torch.get_num_threads()}")
    dev = torch.device(args.device)
    return (dataset,) + tuple(t.to(dev) for t in (x_train, y_train, x_test, y_test))


def progress_bar(total: int, args, desc: str):
    """A tqdm bar over ``total`` steps on stderr, or ``None`` with ``--no-progress``."""
    bar = progress(range(total), args, desc=desc, leave=False, file=sys.stderr)
    return bar if hasattr(bar, "update") else None


def run_epoch(model, batches: Iterable, to_dict: Callable[..., Dict], args, step: int,
              bar=None) -> Tuple[float, int]:
    """One pass of ``model.train(to_dict(batch))`` over ``batches``.

    Parameters
    ----------
    model : pixyz_pyro.model.Model
        Anything with ``train(x_dict) -> loss``; a GAN's ``(loss, d_loss)`` counts its
        first element.
    batches : iterable
        Minibatches (a tensor, or a tuple of tensors passed to ``to_dict`` unpacked).
    to_dict : callable
        Turns a batch into the model's input dict, e.g. ``lambda x: {"x": x}``.
    args : argparse.Namespace
        The example's flags (for ``--max-steps``).
    step : int
        Optimisation steps done before this epoch.
    bar : tqdm, optional
        Progress bar to advance, with the running loss as its postfix.

    Returns
    -------
    mean_loss : float
        Training loss averaged over the examples seen (weighted by batch size).
    step : int
        Steps done after this epoch.
    """
    total, seen = 0.0, 0
    for batch in batches:
        batch = batch if isinstance(batch, tuple) else (batch,)
        loss = model.train(to_dict(*batch))
        loss = loss[0] if isinstance(loss, tuple) else loss
        value = float(loss)
        n = len(batch[0])
        total, seen, step = total + value * n, seen + n, step + 1
        if bar is not None:
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{value:.2f}")
        if stop_early(args, step):
            break
    return total / max(seen, 1), step


def fit_options(args) -> Dict:
    """The keyword arguments of :func:`pixyz_pyro.model.fit` that the example's flags set
    (``--no-progress``, ``--max-steps``).

    >>> import argparse
    >>> fit_options(argparse.Namespace(no_progress=True, max_steps=2))
    {'progress': False, 'max_steps': 2}
    """
    return {"progress": not args.no_progress, "max_steps": args.max_steps}


def epoch_report(logger, extra: Optional[Callable[[], Dict[str, float]]] = None,
                 label: str = "neg-ELBO", unit: str = "nats/image"):
    """A :func:`pixyz_pyro.model.fit` callback: after each epoch, add ``extra()``'s values
    to the history, log the epoch's values to ``logger`` (the test terms as ``test/<key>``)
    and print one line.

    Parameters
    ----------
    logger : examples.common.Logger
        Receives ``train``, ``test``, the extra values and the test terms per epoch.
    extra : callable, optional
        Returns ``{name: value}`` to record beside the losses (an accuracy, a KL).
    label, unit : str
        How the printed line names the loss.
    """
    def report(epoch: int, history) -> bool:
        values = extra() if extra is not None else {}
        history.log(**values)
        logged = {k: history[k][-1] for k in ("train", "test", "train_d_loss", "test_d_loss")
                  if k in history.metrics}
        logged.update(values)
        logged.update({f"test/{k}": v[-1] for k, v in history.terms.items()})
        logger.log(epoch, **logged)
        test = f", test {label} {history.test[-1]:.2f}" if history.test else ""
        d_losses = {k: history[k][-1] for k in ("train_d_loss", "test_d_loss")
                    if k in history.metrics}  # a GAN's discriminator
        shown = "".join(f", {k} {v:.4g}" for k, v in {**d_losses, **values}.items())
        print(f"epoch {epoch}: train {label} {history.train[-1]:.2f}{test}"
              f"{' ' + unit if unit else ''}{shown} ({history['seconds'][-1]:.1f} s)",
              flush=True)
        return False

    return report


def metrics_of(history) -> Dict:
    """The history as the examples' metrics dict: a list per metric (``seconds`` as
    ``epoch_seconds``), ``steps`` done, and the test terms under ``terms``.

    >>> from pixyz_pyro.model import History
    >>> metrics_of(History(metrics={"train": [2.0], "seconds": [0.5]}, epochs=1, steps=3))
    {'train': [2.0], 'epoch_seconds': [0.5], 'steps': 3}
    """
    metrics = {("epoch_seconds" if k == "seconds" else k): v
               for k, v in history.metrics.items()}
    metrics["steps"] = history.steps
    if history.terms:
        metrics["terms"] = history.terms
    return metrics


@torch.no_grad()
def evaluate(loss, batches: Iterable, to_dict: Callable[..., Dict], seed: int,
             distributions: Sequence[nn.Module] = ()) -> Tuple[float, Dict[str, float]]:
    """Average ``loss`` and its top-level terms over a dataset, with fixed noise.

    The global random state is forked, seeded with ``seed`` and restored, so every epoch
    is scored with the same draws and training's random stream is untouched.

    Returns
    -------
    value : float
        The loss per example (each batch weighted by its size).
    terms : dict
        ``{term key: mean value per example}`` of the loss's top-level terms, keyed as
        ``loss.eval(..., return_terms=True)`` keys them.
    """
    for d in distributions:
        d.eval()
    total, seen, terms = 0.0, 0, {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for batch in batches:
            batch = batch if isinstance(batch, tuple) else (batch,)
            value, parts = loss.eval(to_dict(*batch), return_terms=True)
            n = len(batch[0])
            total, seen = total + float(value) * n, seen + n
            for key, t in parts.items():  # the loss's own term keys, as they are
                terms[key] = terms.get(key, 0.0) + float(torch.as_tensor(t).mean()) * n
    for d in distributions:
        d.train()
    return total / max(seen, 1), {k: v / max(seen, 1) for k, v in terms.items()}
