"""A Gaussian mixture model fitted by maximum likelihood with the Loss API.

.. math::

    p(x) = \\sum_{k=1}^{K} \\pi(z=k)\\, \\mathcal{N}(x; \\mu_k, L_k L_k^\\top), \\qquad
    \\mathcal{L} = \\mathrm{mean}\\left(-\\log p(x)\\right)

Each component is a full-covariance ``MultivariateNormal`` lifted from Pyro in one line
(``lift(pd.MultivariateNormal, ...)``) whose ``forward`` returns its mean and Cholesky
factor; the weights :math:`\\pi` are a ``Categorical`` over softmax logits; and
``MixtureModel`` sums them with an exact ``logsumexp``.  The ``ML`` preset trains
:math:`-\\log p(x)` by gradient descent (no EM).  The data are 2-D blobs drawn from a known
mixture, so the fit is scored against the true model's test log-likelihood.

Run from the repository root::

    python -m examples.gmm                 # about 15 seconds
    python -m examples.gmm --components 8  # more components than blobs

It writes ``mixture.png`` (data coloured by the most responsible component, the fitted
2-sigma ellipses and density contours), ``loss_curve.png`` and ``metrics.json``.
"""
import math
import time
from typing import Dict, Optional, Sequence

import numpy as np
import pyro.distributions as pd
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F

from examples.common import Logger, example_parser, parse, progress, setup, stop_early
from examples.plotting import save_figure, save_loss_curve
from pixyz_pyro.dist import Categorical, MixtureModel, lift
from pixyz_pyro.model import ML

MultivariateNormal = lift(pd.MultivariateNormal, ("loc", "scale_tril"))


class Component(MultivariateNormal):
    """:math:`p_k(x|z=k) = \\mathcal{N}(\\mu_k, L_k L_k^\\top)`, a learned mean and Cholesky
    factor (softplus diagonal)."""

    def __init__(self, k: int, loc: torch.Tensor, scale: float):
        super().__init__(var=["x"], name=f"p_{k}")
        d = loc.shape[-1]
        self.loc = nn.Parameter(loc.clone())
        self.diag = nn.Parameter(torch.full((d,), math.log(math.expm1(scale))))
        self.off = nn.Parameter(torch.zeros(d, d))

    def forward(self):
        tril = torch.tril(self.off, -1) + torch.diag(F.softplus(self.diag) + 1e-4)
        return {"loc": self.loc.unsqueeze(0), "scale_tril": tril.unsqueeze(0)}


class Weights(Categorical):
    """:math:`\\pi(z) = \\mathrm{softmax}(a)`, the mixing weights."""

    def __init__(self, k: int):
        super().__init__(var=["z"], name="\\pi", features_shape=[k])
        self.logits = nn.Parameter(torch.zeros(k))

    def forward(self):
        return {"probs": self.logits.softmax(-1).unsqueeze(0)}


def make_blobs(n: int, k: int = 5, seed: int = 0):
    """``n`` points from a random ``k``-component full-covariance 2-D mixture; returns the
    points and the true model's ``pyro.distributions`` object."""
    g = torch.Generator().manual_seed(seed)
    angles = torch.arange(k) * 2 * math.pi / k
    locs = 4 * torch.stack([angles.cos(), angles.sin()], 1) + 0.5 * torch.randn(k, 2, generator=g)
    rot = torch.rand(k, generator=g) * math.pi
    r = torch.stack([torch.stack([rot.cos(), -rot.sin()], 1),
                     torch.stack([rot.sin(), rot.cos()], 1)], 1)
    scales = torch.stack([0.3 + 0.9 * torch.rand(k, generator=g),
                          0.15 + 0.3 * torch.rand(k, generator=g)], 1)
    tril = torch.linalg.cholesky(r @ torch.diag_embed(scales ** 2) @ r.transpose(1, 2))
    weights = torch.rand(k, generator=g) + 0.5
    weights = weights / weights.sum()
    true = pd.MixtureSameFamily(pd.Categorical(weights),
                                pd.MultivariateNormal(locs, scale_tril=tril))
    z = torch.multinomial(weights, n, replacement=True, generator=g)
    x = locs[z] + (tril[z] @ torch.randn(n, 2, 1, generator=g)).squeeze(-1)
    return x, true


def kmeans_pp(x: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` starting means by k-means++ seeding: each next one is a data point drawn with
    probability proportional to its squared distance to the nearest mean so far."""
    centers = [x[torch.randint(len(x), ())]]
    for _ in range(k - 1):
        d2 = torch.cdist(x, torch.stack(centers)).min(1).values ** 2
        centers.append(x[torch.multinomial(d2 / d2.sum(), 1)[0]])
    return torch.stack(centers)


def build(x_train: torch.Tensor, k: int):
    """Components started at k-means++ seeds with a common round covariance, uniform
    weights."""
    spread = float(x_train.std(0).mean()) / 4
    comps = [Component(i, c, spread) for i, c in enumerate(kmeans_pp(x_train, k))]
    return MixtureModel(distributions=comps, prior=Weights(k), name="p")


def save_mixture_plot(p: MixtureModel, x: torch.Tensor, path, title: str) -> None:
    """Points coloured by :math:`\\arg\\max_k p(z=k|x)`, 2-sigma ellipses, density contours."""
    from matplotlib import colormaps

    with torch.no_grad():
        resp = p.posterior().get_log_prob({"x": x}).argmax(0).numpy()
        lo, hi = x.min(0).values - 1, x.max(0).values + 1
        gx, gy = torch.meshgrid(torch.linspace(lo[0], hi[0], 200),
                                torch.linspace(lo[1], hi[1], 200), indexing="xy")
        dens = p.get_log_prob({"x": torch.stack([gx, gy], -1).reshape(-1, 2)}).exp()
        weights = p.prior.get_params()["probs"][0]
    fig = Figure(figsize=(6, 5.5))
    ax = fig.add_subplot()
    cmap = colormaps["tab10"]
    ax.contour(gx.numpy(), gy.numpy(), dens.reshape(200, 200).numpy(), levels=12,
               cmap="Greys", linewidths=0.6)
    pts = x.numpy()
    ax.scatter(pts[:, 0], pts[:, 1], s=3, c=[cmap(r % 10) for r in resp], alpha=0.5)
    t = np.linspace(0, 2 * np.pi, 100)
    circle = np.stack([np.cos(t), np.sin(t)])
    for k, comp in enumerate(p.distributions):
        with torch.no_grad():
            params = comp.get_params()
        mu, tril = params["loc"][0].detach().numpy(), params["scale_tril"][0].detach().numpy()
        ell = mu[:, None] + 2 * tril @ circle
        ax.plot(ell[0], ell[1], color=cmap(k % 10), lw=2)
        ax.annotate(f"{float(weights[k]):.2f}", mu, fontsize=8, ha="center",
                    bbox={"boxstyle": "round", "fc": "white", "alpha": 0.7})
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Fit the mixture; return the metrics (also written to ``<out>/metrics.json``)."""
    ap = example_parser("Gaussian mixture model by maximum likelihood", epochs=30,
                        batch_size=256, lr=0.05)
    ap.add_argument("--components", type=int, default=5)
    ap.add_argument("--blobs", type=int, default=5, help="components of the true mixture")
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-test", type=int, default=1000)
    args = parse(ap, argv)
    out = setup(args, "gmm")
    x, true = make_blobs(args.n_train + args.n_test, args.blobs, seed=args.seed)
    x_train, x_test = x[:args.n_train], x[args.n_train:]
    p = build(x_train, args.components)
    model = ML(p, optimizer=torch.optim.Adam, optimizer_params={"lr": args.lr})
    print(model)

    logger, step, start = Logger(out, args.tensorboard), 0, time.perf_counter()
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in progress(range(1, args.epochs + 1), args, desc="epochs"):
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(x_train), args.batch_size):
            batch = x_train[perm[i:i + args.batch_size]]
            total += float(model.train({"x": batch})) * len(batch)
            step += 1
            if stop_early(args, step):
                break
        test = float(model.test({"x": x_test}))
        logger.log(epoch, train_nll=total / len(x_train), test_nll=test)
        if stop_early(args, step):
            break
    seconds = time.perf_counter() - start
    true_nll = float(-true.log_prob(x_test).mean())
    metrics = {"test_nll": logger.curves["test_nll"][-1], "true_test_nll": true_nll,
               "steps": step, "seconds": seconds}
    print(f"test NLL {metrics['test_nll']:.3f} nats/point (true mixture: {true_nll:.3f}); "
          f"{step} steps in {seconds:.1f} s")
    save_loss_curve({"train": logger.curves["train_nll"], "test": logger.curves["test_nll"],
                     "true model (test)": [true_nll] * len(logger.curves["test_nll"])},
                    out / "loss_curve.png", ylabel="-log p(x) (nats/point)",
                    title="GMM by maximum likelihood")
    save_mixture_plot(p, x_test, out / "mixture.png",
                      f"{args.components} fitted components on test points (weights in "
                      f"boxes); test NLL {metrics['test_nll']:.3f}, true {true_nll:.3f}")
    logger.save(metrics)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
