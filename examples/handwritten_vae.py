"""A hand-written PyTorch VAE: the reference the pixyz_pyro VAE example is measured against.

Plain PyTorch in the style of ``pytorch/examples/vae``, no pixyz_pyro and no Pyro:

* encoder ``q(z|x)``: ``Linear(784, h) - ReLU - Linear(h, h) - ReLU`` then a linear ``loc``
  head and a softplus ``scale`` head (diagonal Normal);
* decoder ``p(x|z)``: ``Linear(z, h) - ReLU - Linear(h, h) - ReLU - Linear(h, 784) - sigmoid``
  (Bernoulli probabilities);
* prior ``p(z) = N(0, I)``;
* loss: negative ELBO = binary cross-entropy on the probabilities, summed over pixels, plus the
  analytic KL, averaged over the batch; one reparameterised sample of ``z`` per image.

It trains on Fashion-MNIST grey levels in ``[0, 1]`` with the Bernoulli likelihood applied to
non-binary data (the usual convention, so the values are comparable with other VAE code but are
not a proper likelihood). Adam, lr 1e-3, batch 128. Per epoch it prints the training and test
negative ELBO in nats per image.

Run from the repository root::

    python -m examples.handwritten_vae --epochs 10 --z-dim 20 --h-dim 400 \\
        --out out/handwritten_vae

Importable pieces, for comparisons: :func:`build`, :func:`neg_elbo`, :func:`neg_elbo_terms`,
:func:`evaluate`, :func:`train_epoch` and :func:`main` (which returns the metrics).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from examples.data import class_names, iterate_minibatches, load_dataset, num_batches, resolve_name

__all__ = [
    "HandwrittenVAE",
    "build",
    "evaluate",
    "main",
    "neg_elbo",
    "neg_elbo_terms",
    "parse_args",
    "train_epoch",
]

X_DIM = 784


class HandwrittenVAE(nn.Module):
    """MLP VAE with a diagonal-Normal encoder and a Bernoulli decoder.

    Parameters
    ----------
    z_dim : int
        Latent dimension.
    h_dim : int
        Width of both hidden layers, in the encoder and in the decoder.
    x_dim : int
        Data dimension (784 for 28x28 images).
    """

    def __init__(self, z_dim: int = 20, h_dim: int = 400, x_dim: int = X_DIM):
        super().__init__()
        self.x_dim, self.z_dim, self.h_dim = x_dim, z_dim, h_dim
        self.encoder = nn.Sequential(
            nn.Linear(x_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, h_dim), nn.ReLU()
        )
        self.enc_loc = nn.Linear(h_dim, z_dim)
        self.enc_scale = nn.Linear(h_dim, z_dim)
        self.decoder = nn.Sequential(
            nn.Linear(z_dim, h_dim),
            nn.ReLU(),
            nn.Linear(h_dim, h_dim),
            nn.ReLU(),
            nn.Linear(h_dim, x_dim),
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return ``loc`` and ``scale`` of ``q(z|x)``, each ``(batch, z_dim)``."""
        h = self.encoder(x)
        return self.enc_loc(h), F.softplus(self.enc_scale(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Return the Bernoulli probabilities of ``p(x|z)``, ``(batch, x_dim)``."""
        return self.decoder(z)

    def forward(
        self, x: torch.Tensor, generator: Optional[torch.Generator] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, draw one reparameterised ``z`` and decode.

        Parameters
        ----------
        x : torch.Tensor
            ``(batch, x_dim)`` in ``[0, 1]``.
        generator : torch.Generator, optional
            Random source for the noise.

        Returns
        -------
        probs, loc, scale : torch.Tensor
            Decoder probabilities and the encoder's parameters.
        """
        loc, scale = self.encode(x)
        eps = torch.randn(loc.shape, generator=generator, dtype=loc.dtype, device=loc.device)
        return self.decode(loc + scale * eps), loc, scale


def build(z_dim: int = 20, h_dim: int = 400) -> HandwrittenVAE:
    """Create the reference VAE for 28x28 images.

    Parameters
    ----------
    z_dim : int
        Latent dimension.
    h_dim : int
        Hidden width.

    Returns
    -------
    HandwrittenVAE
        Freshly initialised (PyTorch's default init; seed with ``torch.manual_seed`` first).
    """
    return HandwrittenVAE(z_dim=z_dim, h_dim=h_dim)


def neg_elbo_terms(
    model: HandwrittenVAE, x: torch.Tensor, generator: Optional[torch.Generator] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-image reconstruction and KL terms of the negative ELBO.

    Parameters
    ----------
    model : HandwrittenVAE
        The VAE.
    x : torch.Tensor
        ``(batch, 784)`` with values in ``[0, 1]``.
    generator : torch.Generator, optional
        Random source for the single reparameterised sample.

    Returns
    -------
    reconstruction : torch.Tensor
        ``-log p(x|z)`` = BCE summed over pixels, shape ``(batch,)``.
    kl : torch.Tensor
        ``KL(q(z|x) || N(0, I))`` in closed form, shape ``(batch,)``.
    """
    probs, loc, scale = model(x, generator)
    reconstruction = F.binary_cross_entropy(probs, x, reduction="none").sum(-1)
    kl = 0.5 * (loc.pow(2) + scale.pow(2) - 1.0 - 2.0 * scale.log()).sum(-1)
    return reconstruction, kl


def neg_elbo(
    model: HandwrittenVAE, x: torch.Tensor, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Negative ELBO in nats per image, averaged over the batch (the training loss).

    Parameters
    ----------
    model : HandwrittenVAE
        The VAE.
    x : torch.Tensor
        ``(batch, 784)`` with values in ``[0, 1]``.
    generator : torch.Generator, optional
        Random source for the single reparameterised sample.

    Returns
    -------
    torch.Tensor
        Scalar ``mean_n [BCE(x_n) + KL_n]``.
    """
    reconstruction, kl = neg_elbo_terms(model, x, generator)
    return (reconstruction + kl).mean()


@torch.no_grad()
def evaluate(
    model: HandwrittenVAE,
    x: torch.Tensor,
    batch_size: int = 1000,
    generator: Optional[torch.Generator] = None,
) -> float:
    """Negative ELBO in nats per image over a whole dataset (one ``z`` sample per image).

    Parameters
    ----------
    model : HandwrittenVAE
        The VAE (switched to eval mode and back).
    x : torch.Tensor
        ``(N, 784)`` images.
    batch_size : int
        Evaluation batch size (does not change the result).
    generator : torch.Generator, optional
        Random source; pass a freshly seeded one for numbers comparable across epochs.

    Returns
    -------
    float
        ``mean_n [BCE(x_n) + KL_n]`` over all ``N`` images.
    """
    was_training = model.training
    model.eval()
    total = 0.0
    for xb in iterate_minibatches(x, batch_size=batch_size):
        total += neg_elbo(model, xb, generator).item() * len(xb)
    model.train(was_training)
    return total / len(x)


def train_epoch(
    model: HandwrittenVAE,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    batch_size: int = 128,
    generator: Optional[torch.Generator] = None,
    progress: bool = True,
    desc: str = "train",
) -> float:
    """One pass over ``x`` in shuffled minibatches, one Adam step per batch.

    Parameters
    ----------
    model : HandwrittenVAE
        The VAE.
    optimizer : torch.optim.Optimizer
        Optimiser over ``model.parameters()``.
    x : torch.Tensor
        ``(N, 784)`` training images.
    batch_size : int
        Minibatch size; the last batch may be smaller.
    generator : torch.Generator, optional
        Random source for the shuffle and the reparameterisation noise.
    progress : bool
        Show a tqdm progress bar (on stderr).
    desc : str
        Progress bar label.

    Returns
    -------
    float
        Training negative ELBO in nats per image, averaged over the epoch's batches (weighted
        by batch size) as the parameters changed.
    """
    from tqdm import tqdm

    model.train()
    total = 0.0
    steps = num_batches(len(x), batch_size)
    with tqdm(total=steps, desc=desc, disable=not progress, leave=False, file=sys.stderr) as bar:
        for i, xb in enumerate(iterate_minibatches(x, None, batch_size, True, generator)):
            loss = neg_elbo(model, xb, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
            bar.update(1)
            if i % 50 == 0:
                bar.set_postfix(neg_elbo=f"{loss.item():.2f}")
    return total / len(x)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (see ``python -m examples.handwritten_vae --help``)."""
    p = argparse.ArgumentParser(
        prog="python -m examples.handwritten_vae",
        description="Hand-written PyTorch VAE on Fashion-MNIST (reference for pixyz_pyro).",
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--z-dim", type=int, default=20)
    p.add_argument("--h-dim", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch.set_num_threads; 0 leaves torch's default (default: 2, which on a 2-core "
        "CPU trains an epoch of 60k images in ~3.2 s against ~4.9 s with 1 thread)",
    )
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist-5k"])
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX directory")
    p.add_argument("--limit", type=int, default=None, help="use only this many train images")
    p.add_argument("--test-limit", type=int, default=None, help="use only this many test images")
    p.add_argument("--out", default="out/handwritten_vae", help="output directory")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    return p.parse_args(argv)


def _save_figures(model, x_test, y_test, metrics, out: Path, dataset: str, seed: int) -> None:
    from examples.plotting import save_image_grid, save_loss_curve, save_scatter

    save_loss_curve(
        {"train": metrics["train_neg_elbo"], "test": metrics["test_neg_elbo"]},
        out / "loss.png",
        ylabel="negative ELBO (nats/image)",
        title="hand-written PyTorch VAE",
    )
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.eval()
        # Evenly spaced test images: mnist-5k's test split is sorted by class.
        originals = x_test[torch.linspace(0, len(x_test) - 1, min(32, len(x_test))).long()]
        recon, _, _ = model(originals, g)
        save_image_grid(
            torch.cat([originals, recon]), out / "reconstructions.png", nrow=16,
            title="test images (top) and reconstructions (bottom)",
        )
        z = torch.randn(64, model.z_dim, generator=g)
        save_image_grid(model.decode(z), out / "samples.png", nrow=8, title="samples from p(z)")
        loc, _ = model.encode(x_test[:2000])
        if loc.shape[1] > 2:  # first two principal components of the posterior means
            centred = loc - loc.mean(0)
            _, _, vh = torch.linalg.svd(centred, full_matrices=False)
            loc, axes = centred @ vh[:2].T, ("PC 1 of E[z|x]", "PC 2 of E[z|x]")
        else:
            axes = ("$z_1$", "$z_2$")
        save_scatter(
            loc, out / "latent.png", labels=y_test[:2000], class_names=class_names(dataset),
            title="test set in latent space", xlabel=axes[0], ylabel=axes[1],
        )
        model.train()


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Train and evaluate; print per-epoch numbers; write metrics, weights and figures.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    dict
        The contents of ``<out>/metrics.json``: the arguments, ``train_neg_elbo`` and
        ``test_neg_elbo`` per epoch (nats/image) and ``epoch_seconds`` (training only).
    """
    args = parse_args(argv)
    torch.set_flush_denormal(True)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    dataset = resolve_name(args.dataset, args.data_dir)
    x_train, _ = load_dataset(args.dataset, "train", args.data_dir, args.limit)
    x_test, y_test = load_dataset(args.dataset, "test", args.data_dir, args.test_limit)
    print(
        f"{dataset}: {len(x_train)} train / {len(x_test)} test images; z={args.z_dim} "
        f"h={args.h_dim} batch={args.batch_size} lr={args.lr} threads={torch.get_num_threads()}"
    )

    model = build(args.z_dim, args.h_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    metrics = {
        "args": vars(args),
        "dataset": dataset,
        "threads": torch.get_num_threads(),
        "train_neg_elbo": [],
        "test_neg_elbo": [],
        "epoch_seconds": [],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        train = train_epoch(
            model, optimizer, x_train, args.batch_size, generator,
            progress=not args.no_progress, desc=f"epoch {epoch}/{args.epochs}",
        )
        seconds = time.perf_counter() - start
        # Same noise every epoch, so test numbers differ only because the model did.
        test = evaluate(model, x_test, generator=torch.Generator().manual_seed(args.seed + 1))
        metrics["train_neg_elbo"].append(train)
        metrics["test_neg_elbo"].append(test)
        metrics["epoch_seconds"].append(seconds)
        print(
            f"epoch {epoch}: train neg-ELBO {train:.2f}, test neg-ELBO {test:.2f} nats/image "
            f"({seconds:.1f} s)",
            flush=True,
        )

    torch.save(model.state_dict(), out / "model.pt")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if not args.no_plots and args.epochs > 0:
        _save_figures(model, x_test, y_test, metrics, out, dataset, args.seed)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
