"""An MMD-VAE (InfoVAE, Zhao et al. 2019) on Fashion-MNIST.

The KL term of the VAE is replaced by the maximum mean discrepancy between the encoder's
codes and the prior, estimated on each batch with a Gaussian kernel:

.. math::

    \\mathcal{L} = \\mathrm{mean}\\left(-\\mathbb{E}_{q(z|x)}[\\log p(x|z)]\\right)
    + \\lambda \\, D_{MMD^2}[q(z|x) \\| p_{prior}(z)],
    \\qquad k(z, z') = \\exp(-\\|z - z'\\|^2 / \\sigma^2)

It matches the *aggregate* posterior to the prior instead of each :math:`q(z|x)`, so the
codes stay informative while samples from the prior still decode to clothes. pixyz_pyro's
``MMD`` draws reparameterised samples from both sides, so its gradient reaches the encoder.
Pixels are grey levels in ``[0, 1]`` scored by a ``Bernoulli`` (Pixyz's semantics: the binary
cross-entropy).

Run from the repository root::

    python -m examples.mmd_vae             # 10 epochs, lambda = 1000
"""
from typing import Dict, Optional, Sequence

import torch

from examples.common import Logger, example_parser, parse, setup
from examples.data import iterate_minibatches
from examples.nets import epoch_report, evaluate, fit_options, load_data, metrics_of
from examples.plotting import save_loss_curve
from examples.vae import Generator, Inference, save_pictures
from pixyz_pyro.dist import Normal
from pixyz_pyro.loss import MMD, KullbackLeibler, LogProb
from pixyz_pyro.loss import Expectation as E
from pixyz_pyro.model import Model, fit

EPOCHS = 10


def build(z_dim: int = 20, h_dim: int = 400, lam: float = 1000.0):
    """``q, p, prior``, the MMD-VAE loss, and the KL for monitoring."""
    q, p = Inference(z_dim, h_dim), Generator(z_dim, h_dim)
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[z_dim], name="p_{prior}")
    mmd = MMD(q, prior, kernel="gaussian", sigma_sqr=2.0 * z_dim)
    loss = (-E(q, LogProb(p))).mean() + lam * mmd
    neg_elbo = (KullbackLeibler(q, prior) - E(q, LogProb(p))).mean()
    return q, p, prior, loss, neg_elbo


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train the MMD-VAE; return the metrics (also written to ``<out>/metrics.json``)."""
    ap = example_parser("MMD-VAE (InfoVAE) on Fashion-MNIST", epochs=EPOCHS)
    ap.add_argument("--z-dim", type=int, default=20)
    ap.add_argument("--h-dim", type=int, default=400)
    ap.add_argument("--lam", type=float, default=1000.0, help="weight of the MMD term")
    args = parse(ap, argv)
    out = setup(args, "mmd_vae")
    dataset, x_train, _, x_test, _ = load_data(args)
    q, p, prior, loss, neg_elbo = build(args.z_dim, args.h_dim, args.lam)
    for d in (q, p, prior):
        d.to(args.device)
    model = Model(loss, distributions=[p, q], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": args.lr})
    print(model)

    mmd = MMD(q, prior, kernel="gaussian", sigma_sqr=2.0 * args.z_dim)  # the loss's term

    def extra():
        batches = {"mmd": (mmd, 500), "neg_elbo": (neg_elbo, 1000)}
        return {name: evaluate(value, iterate_minibatches(x_test, batch_size=n),
                               lambda x: {"x": x}, args.seed + 1, [p, q])[0]
                for name, (value, n) in batches.items()}

    gen = torch.Generator().manual_seed(args.seed)
    logger = Logger(out, args.tensorboard)
    history = fit(model, lambda: iterate_minibatches(x_train, None, args.batch_size, True, gen),
                  args.epochs, list(iterate_minibatches(x_test, batch_size=500)),
                  test_seed=args.seed + 1, callbacks=[epoch_report(logger, extra, label="loss")],
                  **fit_options(args))
    metrics = metrics_of(history)
    save_loss_curve({"train loss": metrics["train"], "test loss": metrics["test"],
                     "test neg-ELBO": metrics["neg_elbo"]}, out / "loss_curve.png",
                    ylabel="nats/image", title=f"MMD-VAE, lambda={args.lam:g}")
    save_pictures(q, p, prior, x_test, out, args.seed)
    metrics["dataset"] = dataset
    logger.save(metrics)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
