"""Real NVP (Dinh et al., 2017) on generated two-moons data, by maximum likelihood.

.. math::

    x = f^{-1}(z), \\quad z \\sim \\mathcal{N}(0, I), \\qquad
    \\log p(x) = \\log \\mathcal{N}(f(x); 0, I) + \\log\\left|\\det
    \\frac{\\partial f(x)}{\\partial x}\\right|, \\qquad
    \\mathcal{L} = \\mathrm{mean}(-\\log p(x))

``f`` is a ``FlowList`` of ``AffineCoupling`` layers (channel-wise masks, alternating which
half is kept), each with one network returning the log-scale :math:`s` and the shift
:math:`t`; every coupling is a Pyro ``TransformModule`` underneath.
``InverseTransformedDistribution(prior, flow, var=["x"])`` is the model, and the ``ML``
preset trains :math:`-\\log p(x)`.  The test log-likelihood is compared with the base
distribution alone and with the best single Gaussian.

Run from the repository root::

    python -m examples.realnvp                # about 30 seconds
    python -m examples.realnvp --layers 12

It writes ``density.png`` (data, learned density, samples, and the test data mapped to the
latent space), ``loss_curve.png`` and ``metrics.json``.
"""
import math
import time
from typing import Dict, Optional, Sequence

import torch
from matplotlib.figure import Figure
from torch import nn

from examples.common import Logger, example_parser, parse, progress, setup, stop_early
from examples.plotting import save_figure, save_loss_curve
from pixyz_pyro.dist import InverseTransformedDistribution, Normal
from pixyz_pyro.flows import AffineCoupling, FlowList
from pixyz_pyro.model import ML


def make_moons(n: int, noise: float = 0.05, generator: Optional[torch.Generator] = None):
    """``n`` points of two interleaved half circles with Gaussian noise, standardised
    (as ``sklearn.datasets.make_moons`` draws them)."""
    upper = torch.rand(n, generator=generator) < 0.5
    angle = torch.rand(n, generator=generator) * math.pi
    x = torch.stack([angle.cos(), angle.sin()], 1)
    x = torch.where(upper.unsqueeze(1), x, torch.stack([1 - angle.cos(), 0.5 - angle.sin()], 1))
    x = x + noise * torch.randn(n, 2, generator=generator)
    return (x - torch.tensor([0.5, 0.25])) / torch.tensor([0.87, 0.5])


class ScaleTranslateNet(nn.Module):
    """:math:`(s, t)` from the kept half: an MLP, ``tanh``-bounded log-scale."""

    def __init__(self, in_features: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * in_features))

    def forward(self, x):
        s, t = self.net(x).chunk(2, dim=-1)
        return torch.tanh(s), t


def build(layers: int, hidden: int):
    """The prior, the flow and :math:`p(x)`."""
    prior = Normal(loc=torch.zeros(2), scale=torch.ones(2), var=["z"], name="p_{prior}")
    flow = FlowList([AffineCoupling(2, mask_type="channel_wise",
                                    scale_translate_net=ScaleTranslateNet(2, hidden),
                                    inverse_mask=i % 2 == 1) for i in range(layers)])
    return prior, flow, InverseTransformedDistribution(prior=prior, flow=flow, var=["x"])


def save_density_plot(p, x_test: torch.Tensor, path, title: str) -> None:
    """Four panels: test data, :math:`p(x)` on a grid, samples, and :math:`f(x_{test})`."""
    with torch.no_grad():
        g = torch.linspace(-3, 3, 160)
        gx, gy = torch.meshgrid(g, g, indexing="xy")
        dens = p.get_log_prob({"x": torch.stack([gx, gy], -1).reshape(-1, 2)}).exp()
        samples = p.sample(batch_n=len(x_test))
        latent = p.flow(x_test, compute_jacobian=False)
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 4)
    axes[0].scatter(x_test[:, 0], x_test[:, 1], s=2, alpha=0.5)
    axes[0].set_title("test data x")
    axes[1].imshow(dens.reshape(160, 160).numpy(), origin="lower", extent=(-3, 3, -3, 3),
                   cmap="viridis")
    axes[1].set_title("learned density p(x)")
    axes[2].scatter(samples["x"][:, 0], samples["x"][:, 1], s=2, alpha=0.5, color="C1")
    axes[2].set_title("samples $x = f^{-1}(z)$, $z \\sim N(0, I)$")
    axes[3].scatter(latent[:, 0], latent[:, 1], s=2, alpha=0.5, color="C2")
    axes[3].set_title("test data in latent space $z = f(x)$")
    for ax in axes:
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.set_aspect("equal")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train Real NVP; return the metrics (also written to ``<out>/metrics.json``)."""
    ap = example_parser("Real NVP on two moons", epochs=40, batch_size=256, lr=3e-3)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--n-train", type=int, default=5000)
    ap.add_argument("--n-test", type=int, default=2000)
    args = parse(ap, argv)
    out = setup(args, "realnvp")
    gen = torch.Generator().manual_seed(args.seed)
    x_train = make_moons(args.n_train, generator=gen)
    x_test = make_moons(args.n_test, generator=gen)
    prior, flow, p = build(args.layers, args.hidden)
    model = ML(p, optimizer=torch.optim.Adam, optimizer_params={"lr": args.lr})
    print(model)

    base = float(-prior.get_log_prob({"z": x_test}).mean())
    mu, cov = x_train.mean(0), torch.cov(x_train.T)
    gauss = float(-torch.distributions.MultivariateNormal(mu, cov).log_prob(x_test).mean())
    logger, step, start = Logger(out, args.tensorboard), 0, time.perf_counter()
    for epoch in progress(range(1, args.epochs + 1), args, desc="epochs"):
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(x_train), args.batch_size):
            batch = x_train[perm[i:i + args.batch_size]]
            total += float(model.train({"x": batch})) * len(batch)
            step += 1
            if stop_early(args, step):
                break
        logger.log(epoch, train=total / len(x_train), test=float(model.test({"x": x_test})))
        if stop_early(args, step):
            break
    seconds = time.perf_counter() - start
    test = logger.curves["test"][-1]
    metrics = {"test_nll": test, "base_test_nll": base, "gaussian_test_nll": gauss,
               "steps": step, "seconds": seconds}
    print(f"test NLL {test:.3f} nats/point; base N(0, I) {base:.3f}, best Gaussian "
          f"{gauss:.3f}; {step} steps in {seconds:.1f} s")
    n = len(logger.curves["test"])
    save_loss_curve({**logger.curves, "base N(0, I)": [base] * n, "best Gaussian": [gauss] * n},
                    out / "loss_curve.png", ylabel="-log p(x) (nats/point)",
                    title="Real NVP on two moons")
    save_density_plot(p, x_test, out / "density.png",
                      f"Real NVP, {args.layers} affine couplings: test NLL {test:.2f} "
                      f"(base {base:.2f}, best Gaussian {gauss:.2f})")
    logger.save(metrics)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
