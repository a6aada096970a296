"""A variational autoencoder on Fashion-MNIST: the README's main job (``make demo``).

The model and its objective, as the paper writes them:

.. math::

    p(x, z) = p(x|z) p_{prior}(z), \\quad p_{prior}(z) = \\mathcal{N}(0, I), \\quad
    q(z|x) = \\mathcal{N}(\\mu(x), \\mathrm{diag}\\,\\sigma^2(x))

    \\mathcal{L} = \\mathrm{mean}\\left(D_{KL}[q(z|x) \\| p_{prior}(z)]
    - \\mathbb{E}_{q(z|x)}[\\log p(x|z)]\\right)

with ``z`` of 20 dimensions and two hidden layers of 400 units in the encoder
(``784-400-400`` then a ``loc`` head and a softplus ``scale`` head) and in the decoder
(``20-400-400-784``, sigmoid), the same architecture as :mod:`examples.handwritten_vae`.
Adam, lr 1e-3, batches of 128.

Pixels are grey levels in ``[0, 1]`` (not binarised). ``p(x|z)`` is a ``Bernoulli`` with
Pixyz's semantics: it scores any target in ``[0, 1]`` as
:math:`x \\log \\pi + (1 - x) \\log (1 - \\pi)`, the binary cross-entropy, as most VAE code
does for MNIST-like images. The negative ELBO is reported in nats per image.

Run from the repository root::

    python -m examples.vae                 # 20 epochs, about 1.5 minutes on 2 cores
    python -m examples.vae --epochs 30     # longer
    python -m examples.vae --compare       # also train the hand-written PyTorch VAE
    torchrun --nproc_per_node=2 -m examples.vae --distributed   # data-parallel, 2 processes

It prints the model (formula, networks, optimizer), a progress bar, and per epoch the
training and test negative ELBO; it writes ``reconstructions.png``, ``samples.png``,
``loss_curve.png`` and ``metrics.json`` to ``--out`` (default ``out/vae``).
"""
import os
import sys
import time
from typing import Dict, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from examples.common import Logger, example_parser, parse, setup
from examples.data import iterate_minibatches, num_batches
from examples.nets import X_DIM, evaluate, load_data, mlp, progress_bar, run_epoch
from examples.plotting import save_image_grid, save_loss_curve
from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.loss import Expectation as E
from pixyz_pyro.loss import KullbackLeibler, LogProb
from pixyz_pyro.model import Model
from pixyz_pyro.model import distributed as dist_util

EPOCHS = 20


class Inference(Normal):
    """:math:`q(z|x)`: ``x_dim-h-h`` ReLU MLP, a linear ``loc`` and a softplus ``scale``."""

    def __init__(self, z_dim: int = 20, h_dim: int = 400, x_dim: int = X_DIM):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.hidden = mlp([x_dim, h_dim, h_dim], last=nn.ReLU())
        self.fc_loc = nn.Linear(h_dim, z_dim)
        self.fc_scale = nn.Linear(h_dim, z_dim)

    def forward(self, x):
        h = self.hidden(x)
        return {"loc": self.fc_loc(h), "scale": F.softplus(self.fc_scale(h))}


class Generator(Bernoulli):
    """:math:`p(x|z)`: ``z-h-h-x_dim`` ReLU MLP with sigmoid probabilities."""

    def __init__(self, z_dim: int = 20, h_dim: int = 400, x_dim: int = X_DIM):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = mlp([z_dim, h_dim, h_dim, x_dim], last=nn.Sigmoid())

    def forward(self, z):
        return {"probs": self.net(z)}


def build(z_dim: int = 20, h_dim: int = 400):
    """The encoder ``q``, decoder ``p`` and prior, and the loss.

    ``q`` is built first, so that under the same seed its layers start from the same
    weights as :func:`examples.handwritten_vae.build`'s encoder, then the decoder's.
    """
    q = Inference(z_dim, h_dim)
    p = Generator(z_dim, h_dim)
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[z_dim], name="p_{prior}")
    loss = (KullbackLeibler(q, prior) - E(q, LogProb(p))).mean()
    return q, p, prior, loss


def train_epoch(model: Model, batches, args, step: int = 0, bar=None):
    """One Adam step per batch of images; returns (mean neg-ELBO, steps done)."""
    return run_epoch(model, batches, lambda x: {"x": x}, args, step, bar)


@torch.no_grad()
def save_pictures(q, p, prior, x_test, out, seed: int) -> None:
    """Reconstructions of 32 test images, 64 samples from the prior."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        idx = torch.linspace(0, len(x_test) - 1, min(32, len(x_test))).long()
        originals = x_test[idx]
        z = q.sample({"x": originals}, return_all=False)
        recon = p.sample_mean(z)
        save_image_grid(torch.cat([originals, recon]).cpu(), out / "reconstructions.png",
                        nrow=16, title="test images (top), reconstructions (bottom)")
        z = prior.sample(batch_n=64, return_all=False)
        save_image_grid(p.sample_mean(z).cpu(), out / "samples.png", nrow=8,
                        title="p(x|z), z ~ p(z): Bernoulli means")


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train the VAE; return the metrics (also written to ``<out>/metrics.json``)."""
    ap = example_parser("VAE (z=20, h=400) on Fashion-MNIST with pixyz_pyro", epochs=EPOCHS)
    ap.add_argument("--z-dim", type=int, default=20)
    ap.add_argument("--h-dim", type=int, default=400)
    ap.add_argument("--compare", action="store_true",
                    help="also train examples/handwritten_vae.py with the same settings")
    ap.add_argument("--distributed", action="store_true",
                    help="data-parallel in the processes torchrun starts (docs/distributed.md)")
    ap.add_argument("--compile", nargs="?", const=True, default=False, metavar="MODE",
                    help="Model(compile=...): torch.compile the step after the first one; "
                         "MODE is a torch.compile mode, e.g. reduce-overhead (CUDA graphs "
                         "on a GPU)")
    args = parse(ap, argv)
    out = setup(args, "vae")
    rank, world = 0, 1
    if args.distributed:  # join torchrun's group (gloo on CPU, nccl on CUDA); rank 0 prints
        rank, world, local_rank = dist_util.init_from_env(args.device)
        if torch.device(args.device).type == "cuda":
            args.device = f"cuda:{local_rank}"
        torch.set_num_threads(max(1, args.threads // int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
        if rank != 0:
            sys.stdout, args.no_progress = open(os.devnull, "w"), True
    dataset, x_train, _, x_test, _ = load_data(args)
    q, p, prior, loss = build(args.z_dim, args.h_dim)
    for d in (q, p, prior):
        d.to(args.device)
    model = Model(loss, distributions=[p, q], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": args.lr},
                  compile=args.compile)  # DDP by itself under --distributed
    if args.distributed:  # rank 0's weights are broadcast; each rank draws its own noise
        torch.manual_seed(args.seed + rank)
    print(model)

    logger = Logger(out, args.tensorboard)
    gen = torch.Generator().manual_seed(args.seed)
    metrics = {"dataset": dataset, "train_neg_elbo": [], "test_neg_elbo": [],
               "epoch_seconds": []}
    step = 0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        total = num_batches(len(x_train) // world, args.batch_size)
        bar = progress_bar(total, args, f"epoch {epoch}/{args.epochs}")
        batches = iterate_minibatches(x_train, None, args.batch_size, True, gen,
                                      rank=rank, world_size=world)  # this rank's shard
        train, step = train_epoch(model, batches, args, step, bar)
        train = float(dist_util.average_across_ranks(torch.tensor(train, device=args.device)))
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - start
        if rank != 0:  # only rank 0 scores, prints and writes
            if args.max_steps is not None and step >= args.max_steps:
                break
            continue
        test, terms = evaluate(loss, iterate_minibatches(x_test, batch_size=1000),
                               lambda x: {"x": x}, args.seed + 1, [p, q])
        metrics["train_neg_elbo"].append(train)
        metrics["test_neg_elbo"].append(test)
        metrics["epoch_seconds"].append(seconds)
        logger.log(epoch, train_neg_elbo=train, test_neg_elbo=test,
                   **{f"test/{k}": v for k, v in terms.items()})
        print(f"epoch {epoch}: train neg-ELBO {train:.2f}, test neg-ELBO {test:.2f} "
              f"nats/image ({seconds:.1f} s)", flush=True)
        if args.max_steps is not None and step >= args.max_steps:
            break

    if args.distributed:
        # Leave together: a rank that tears down gloo while rank 0 still scores the test
        # set can abort (SIGABRT) at exit.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        if rank != 0:
            return metrics
    save_loss_curve({"train": metrics["train_neg_elbo"], "test": metrics["test_neg_elbo"]},
                    out / "loss_curve.png", ylabel="negative ELBO (nats/image)",
                    title="pixyz_pyro VAE")
    save_pictures(q, p, prior, x_test, out, args.seed)
    metrics["steps"] = step
    if args.compare:
        metrics["handwritten"] = ref = compare(args, out)
        ours, theirs = metrics["test_neg_elbo"][-1], ref["test_neg_elbo"][-1]
        print(f"test neg-ELBO after {args.epochs} epochs: pixyz_pyro {ours:.2f}, "
              f"hand-written {theirs:.2f} nats/image ({100 * (ours - theirs) / theirs:+.2f}%)")
    logger.save(metrics)
    print(f"wrote {out}/")
    return metrics


def compare(args, out) -> Dict:
    """Train :mod:`examples.handwritten_vae` with the same flags; print both test numbers."""
    from examples import handwritten_vae

    argv = ["--epochs", str(args.epochs), "--seed", str(args.seed), "--z-dim",
            str(args.z_dim), "--h-dim", str(args.h_dim), "--batch-size", str(args.batch_size),
            "--lr", str(args.lr), "--threads", str(args.threads), "--dataset", args.dataset,
            "--out", str(out / "handwritten")]
    for flag, value in (("--data-dir", args.data_dir), ("--limit", args.limit),
                        ("--test-limit", args.test_limit)):
        if value is not None:
            argv += [flag, str(value)]
    if args.no_progress:
        argv.append("--no-progress")
    print("\nhand-written PyTorch VAE, same settings:")
    ref = handwritten_vae.main(argv)
    return {"test_neg_elbo": ref["test_neg_elbo"], "epoch_seconds": ref["epoch_seconds"]}


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import record

    record(main)()  # under torchrun, a failing rank's error is reported as the job's
