"""A GAN on Fashion-MNIST with MLP generator and discriminator, via the ``GAN`` preset.

The generator is a deterministic map of prior noise, marginalised to a distribution over
images; the discriminator :math:`d(t|x)` outputs the probability that ``x`` is real:

.. math::

    p(x) = \\int p(x|z) p_{prior}(z) dz, \\qquad
    \\min_p \\max_d \\; \\mathbb{E}_{p_{data}(x)}[\\log d(x)]
    + \\mathbb{E}_{p(x)}[\\log(1 - d(x))]

``GAN(p, d)`` builds ``AdversarialJensenShannon(p_data, p, d)`` (the non-saturating
generator loss) and alternates one discriminator step on detached samples with one
generator step, each with its own Adam (lr 2e-4, betas (0.5, 0.999), as in DCGAN), on
batches of 64.
Pixels are grey levels in ``[0, 1]``; the generator ends in a sigmoid.

Run from the repository root::

    python -m examples.gan                 # 10 epochs
"""
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from examples.common import Logger, example_parser, parse, setup
from examples.data import iterate_minibatches
from examples.nets import X_DIM, epoch_report, fit_options, load_data, metrics_of, mlp
from examples.plotting import save_image_grid, save_loss_curve
from pixyz_pyro.dist import Deterministic, Normal
from pixyz_pyro.model import GAN, fit

EPOCHS = 10


def _leaky():
    return nn.LeakyReLU(0.2)


class Generator(Deterministic):
    """:math:`x = G(z)`: ``z-128-256-512-1024-784``, batch norm and LeakyReLU between the
    layers, a sigmoid output (the MLP generator of the PyTorch-GAN collection)."""

    def __init__(self, z_dim: int):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        layers = [nn.Linear(z_dim, 128), _leaky()]
        for a, b in ((128, 256), (256, 512), (512, 1024)):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), _leaky()]
        self.net = nn.Sequential(*layers, nn.Linear(1024, X_DIM), nn.Sigmoid())

    def forward(self, z):
        return {"x": self.net(z)}


class Discriminator(Deterministic):
    """:math:`d(t|x)`: ``784-512-256-1`` with LeakyReLU and a sigmoid output."""

    def __init__(self):
        super().__init__(var=["t"], cond_var=["x"], name="d")
        self.net = mlp([X_DIM, 512, 256, 1], activation=_leaky, last=nn.Sigmoid())

    def forward(self, x):
        return {"t": self.net(x)}


def build(z_dim: int = 64, lr: float = 2e-4):
    """Generator ``p`` (marginal over ``z``), its prior, the discriminator and the model."""
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[z_dim], name="p_{prior}")
    generator = Generator(z_dim)
    p = (generator * prior).marginalize_var("z")
    d = Discriminator()
    adam = {"lr": lr, "betas": (0.5, 0.999)}
    model = GAN(p, d, optimizer=torch.optim.Adam, optimizer_params=adam,
                d_optimizer=torch.optim.Adam, d_optimizer_params=adam)
    return generator, prior, p, d, model


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train the GAN; return the metrics (also written to ``<out>/metrics.json``)."""
    ap = example_parser("MLP GAN on Fashion-MNIST with the GAN preset", epochs=EPOCHS,
                        batch_size=64, lr=2e-4)
    ap.add_argument("--z-dim", type=int, default=64)
    args = parse(ap, argv)
    out = setup(args, "gan")
    dataset, x_train, _, x_test, _ = load_data(args, bernoulli=False)
    generator, prior, p, d, model = build(args.z_dim, args.lr)
    for m in (generator, prior, d):
        m.to(args.device)
    print(model)
    gen = torch.Generator().manual_seed(args.seed)
    logger = Logger(out, args.tensorboard)
    # GAN.train and GAN.test return (generator loss, discriminator loss): fit keeps the
    # second as train_d_loss and test_d_loss
    history = fit(model, lambda: iterate_minibatches(x_train, None, args.batch_size, True, gen),
                  args.epochs, [{"x": x_test}], test_seed=args.seed + 1,
                  callbacks=[epoch_report(logger, label="generator loss", unit="")],
                  **fit_options(args))
    metrics = metrics_of(history)
    save_loss_curve({"generator (train)": metrics["train"],
                     "discriminator (train)": metrics["train_d_loss"]},
                    out / "loss_curve.png", ylabel="loss (binary cross-entropy)",
                    title="GAN")
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        x = p.sample(batch_n=64, return_all=False)["x"]
    save_image_grid(x.cpu(), out / "samples.png", nrow=8, title="samples x = G(z), z ~ p(z)")
    save_image_grid(x_test[:64].cpu(), out / "real.png", nrow=8, title="real test images")
    metrics["dataset"] = dataset
    logger.save(metrics)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
