"""A conditional VAE on Fashion-MNIST: generate an item of a chosen class.

The label ``y`` (one-hot) conditions both the encoder and the decoder:

.. math::

    p(x, z | y) = p(x|z, y) p_{prior}(z), \\qquad q(z|x, y)

    \\mathcal{L} = \\mathrm{mean}\\left(D_{KL}[q(z|x, y) \\| p_{prior}(z)]
    - \\mathbb{E}_{q(z|x, y)}[\\log p(x|z, y)]\\right)

Pixels are grey levels in ``[0, 1]`` scored by a ``Bernoulli`` (Pixyz's semantics: the binary
cross-entropy). ``samples.png`` has one row per class and one column per draw of ``z``
(the same ``z`` down each column, so a column shows one "style" in every class).

Run from the repository root::

    python -m examples.cvae                # 10 epochs
"""
from typing import Dict, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from examples.common import Logger, example_parser, parse, setup
from examples.data import class_names, iterate_minibatches
from examples.nets import X_DIM, epoch_report, fit_options, load_data, metrics_of, mlp, one_hot
from examples.plotting import save_image_grid, save_loss_curve
from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.loss import Expectation as E
from pixyz_pyro.loss import KullbackLeibler, LogProb
from pixyz_pyro.model import Model, fit

EPOCHS = 10
N_CLASSES = 10


class Inference(Normal):
    """:math:`q(z|x, y)`: an MLP on ``[x, y]``."""

    def __init__(self, z_dim: int, h_dim: int):
        super().__init__(var=["z"], cond_var=["x", "y"], name="q")
        self.hidden = mlp([X_DIM + N_CLASSES, h_dim, h_dim], last=nn.ReLU())
        self.fc_loc = nn.Linear(h_dim, z_dim)
        self.fc_scale = nn.Linear(h_dim, z_dim)

    def forward(self, x, y):
        h = self.hidden(torch.cat([x, y], -1))
        return {"loc": self.fc_loc(h), "scale": F.softplus(self.fc_scale(h))}


class Generator(Bernoulli):
    """:math:`p(x|z, y)`: an MLP on ``[z, y]`` with sigmoid probabilities."""

    def __init__(self, z_dim: int, h_dim: int):
        super().__init__(var=["x"], cond_var=["z", "y"], name="p")
        self.net = mlp([z_dim + N_CLASSES, h_dim, h_dim, X_DIM], last=nn.Sigmoid())

    def forward(self, z, y):
        return {"probs": self.net(torch.cat([z, y], -1))}


def build(z_dim: int = 20, h_dim: int = 400):
    """``q, p, prior`` and the loss."""
    q, p = Inference(z_dim, h_dim), Generator(z_dim, h_dim)
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[z_dim], name="p_{prior}")
    loss = (KullbackLeibler(q, prior) - E(q, LogProb(p))).mean()
    return q, p, prior, loss


def to_dict(x, y):
    return {"x": x, "y": one_hot(y, N_CLASSES)}


@torch.no_grad()
def save_pictures(q, p, prior, x_test, y_test, out, seed: int, names) -> None:
    """Reconstructions, and a class-by-column grid of samples sharing ``z`` per column."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        idx = torch.linspace(0, len(x_test) - 1, min(32, len(x_test))).long()
        given = to_dict(x_test[idx], y_test[idx])
        z = q.sample(given, return_all=False)
        recon = p.sample_mean({**z, "y": given["y"]})
        save_image_grid(torch.cat([given["x"], recon]).cpu(), out / "reconstructions.png",
                        nrow=16, title="test images (top), reconstructions (bottom)")
        cols = 10
        z = prior.sample(batch_n=cols, return_all=False)["z"].repeat(N_CLASSES, 1)
        y = one_hot(torch.arange(N_CLASSES).repeat_interleave(cols), N_CLASSES).to(z)
        save_image_grid(p.sample_mean({"z": z, "y": y}).cpu(), out / "samples.png", nrow=cols,
                        title=f"rows: {names[0]}, {names[1]}, ..., {names[-1]}; "
                        "columns share z")


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train the CVAE; return the metrics (also written to ``<out>/metrics.json``)."""
    ap = example_parser("Conditional VAE on Fashion-MNIST with pixyz_pyro", epochs=EPOCHS)
    ap.add_argument("--z-dim", type=int, default=20)
    ap.add_argument("--h-dim", type=int, default=400)
    args = parse(ap, argv)
    out = setup(args, "cvae")
    dataset, x_train, y_train, x_test, y_test = load_data(args)
    q, p, prior, loss = build(args.z_dim, args.h_dim)
    for d in (q, p, prior):
        d.to(args.device)
    model = Model(loss, distributions=[p, q], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": args.lr})
    print(model)

    gen = torch.Generator().manual_seed(args.seed)
    logger = Logger(out, args.tensorboard)
    history = fit(model, lambda: iterate_minibatches(x_train, y_train, args.batch_size, True, gen),
                  args.epochs, list(iterate_minibatches(x_test, y_test, 1000)), to_dict=to_dict,
                  terms=True, test_seed=args.seed + 1, callbacks=[epoch_report(logger)],
                  **fit_options(args))  # the test neg-ELBO and its two terms, per image
    metrics = metrics_of(history)
    save_loss_curve({"train": metrics["train"], "test": metrics["test"]},
                    out / "loss_curve.png", ylabel="negative ELBO (nats/image)",
                    title="conditional VAE")
    save_pictures(q, p, prior, x_test, y_test, out, args.seed, class_names(dataset))
    metrics["dataset"] = dataset
    logger.save(metrics)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
