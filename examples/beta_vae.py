"""A β-VAE on Fashion-MNIST, with the KL weight annealed through ``Parameter("beta")``.

.. math::

    \\mathcal{L}_\\beta = \\mathrm{mean}\\left(\\beta \\, D_{KL}[q(z|x) \\| p_{prior}(z)]
    - \\mathbb{E}_{q(z|x)}[\\log p(x|z)]\\right)

:math:`\\beta` is not baked into the loss: it is a ``Parameter`` read from the input dict,
so each step passes its own value, ``model.train({"x": x, "beta": beta})``. It rises
linearly from 0 to ``--beta`` over ``--warmup-epochs`` (KL annealing, Bowman et al. 2016),
then stays; ``--beta 4`` (the default) is Higgins et al.'s β-VAE, which trades
reconstruction for a more factorised code. The test set is scored with ``beta = 1``,
the real negative ELBO.

Pixels are grey levels in ``[0, 1]`` scored by a ``Bernoulli`` (Pixyz's semantics: the binary
cross-entropy). Besides reconstructions, samples and the loss curve it writes
``traversals.png``: one row per latent dimension (the most used first), moving it from -3 to
3 while the others stay at a test image's posterior mean.

Run from the repository root::

    python -m examples.beta_vae            # 10 epochs, beta rising to 4 over 2
"""
from typing import Dict, Optional, Sequence

import torch

from examples.common import Logger, example_parser, parse, setup
from examples.data import iterate_minibatches, num_batches
from examples.nets import epoch_report, evaluate, fit_options, load_data, metrics_of
from examples.plotting import save_image_grid, save_loss_curve
from examples.vae import Generator, Inference, save_pictures
from pixyz_pyro.dist import Normal
from pixyz_pyro.loss import Expectation as E
from pixyz_pyro.loss import KullbackLeibler, LogProb, Parameter
from pixyz_pyro.model import Model, fit

EPOCHS = 10


class Annealing:
    """:math:`\\beta_t = \\beta \\min(1, t / T)` for step ``t``; each call is one step."""

    def __init__(self, beta: float, warmup_steps: int):
        self.beta, self.warmup, self.t = beta, max(1, warmup_steps), 0

    def __call__(self) -> float:
        value = self.beta * min(1.0, self.t / self.warmup)
        self.t += 1
        return value


def build(z_dim: int = 10, h_dim: int = 400):
    """``q, p, prior`` and the loss with the KL weight as ``Parameter("beta")``."""
    q, p = Inference(z_dim, h_dim), Generator(z_dim, h_dim)
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[z_dim], name="p_{prior}")
    loss = (Parameter("beta") * KullbackLeibler(q, prior) - E(q, LogProb(p))).mean()
    return q, p, prior, loss


@torch.no_grad()
def save_traversals(q, p, x_test, out, steps: int = 9) -> None:
    """Rows: latent dimensions by decreasing mean KL; columns: that dimension at -3..3."""
    params = q.get_params({"x": x_test[:2000]})
    loc, scale = params["loc"], params["scale"]
    kl = 0.5 * (loc ** 2 + scale ** 2 - 1 - 2 * scale.log()).mean(0)
    dims = kl.argsort(descending=True)
    base = loc[0]
    values = torch.linspace(-3, 3, steps, device=loc.device)
    z = base.repeat(len(dims) * steps, 1)
    for row, d in enumerate(dims):
        z[row * steps:(row + 1) * steps, d] = values
    images = p.sample_mean({"z": z})
    save_image_grid(images.cpu(), out / "traversals.png", nrow=steps,
                    title="rows: z_k from -3 to 3, by decreasing KL")


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train the β-VAE; return the metrics (also written to ``<out>/metrics.json``)."""
    ap = example_parser("beta-VAE with KL annealing on Fashion-MNIST", epochs=EPOCHS)
    ap.add_argument("--z-dim", type=int, default=10)
    ap.add_argument("--h-dim", type=int, default=400)
    ap.add_argument("--beta", type=float, default=4.0, help="final KL weight")
    ap.add_argument("--warmup-epochs", type=float, default=2.0,
                    help="epochs over which beta rises linearly from 0")
    args = parse(ap, argv)
    out = setup(args, "beta_vae")
    dataset, x_train, _, x_test, _ = load_data(args)
    q, p, prior, loss = build(args.z_dim, args.h_dim)
    for d in (q, p, prior):
        d.to(args.device)
    model = Model(loss, distributions=[p, q], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": args.lr})
    print(model)

    per_epoch = num_batches(len(x_train), args.batch_size)
    beta = Annealing(args.beta, int(args.warmup_epochs * per_epoch))
    gen = torch.Generator().manual_seed(args.seed)

    kl = KullbackLeibler(q, prior).mean()

    def extra():
        value, _ = evaluate(kl, iterate_minibatches(x_test, batch_size=1000),
                            lambda x: {"x": x}, args.seed + 1, [p, q])
        return {"kl": value, "beta": beta.beta * min(1.0, beta.t / beta.warmup)}

    logger = Logger(out, args.tensorboard)
    test_data = [{"x": x, "beta": 1.0} for x in iterate_minibatches(x_test, batch_size=1000)]
    history = fit(model, lambda: iterate_minibatches(x_train, None, args.batch_size, True, gen),
                  args.epochs, test_data, to_dict=lambda x: {"x": x, "beta": beta()},
                  test_seed=args.seed + 1, callbacks=[epoch_report(logger, extra, label="loss")],
                  **fit_options(args))
    metrics = metrics_of(history)
    save_loss_curve({"train objective (annealed beta)": metrics["train"],
                     "test neg-ELBO (beta=1)": metrics["test"], "test KL": metrics["kl"]},
                    out / "loss_curve.png", ylabel="nats/image", title="beta-VAE")
    save_pictures(q, p, prior, x_test, out, args.seed)
    save_traversals(q, p, x_test, out)
    metrics["dataset"] = dataset
    logger.save(metrics)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
