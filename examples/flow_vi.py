"""Variational inference with a planar normalizing flow on a 2-D toy density.

The target is an unnormalised density :math:`p(z) \\propto e^{-U(z)}` from Rezende &
Mohamed (2015) (``u1``: a ring with two modes, ``u2``-``u4``: sine-shaped ridges) or a
banana, given to the Distribution API by its log-density alone (``CustomProb``).  The
approximation pushes a standard Normal through :math:`K` planar flows,

.. math::

    q(z) :\\; z = f_K \\circ \\cdots \\circ f_1(x), \\quad x \\sim \\mathcal{N}(0, I), \\qquad
    \\log q(z) = \\log \\mathcal{N}(x; 0, I) - \\sum_k \\log\\left|\\det
    \\frac{\\partial f_k}{\\partial x}\\right|

(``TransformedDistribution(prior, FlowList([PlanarFlow(2), ...]), var=["z"])``, on Pyro's
``Planar`` transform), and minimises the annealed negative ELBO

.. math::

    \\mathcal{L} = \\mathrm{mean}\\, \\mathbb{E}_{q(z)}\\left[\\log q(z) - \\beta
    \\log p(z)\\right], \\qquad \\beta: 0.01 \\to 1

with :math:`\\beta` a ``Parameter`` fed at every step.  A grid gives the target's
normaliser :math:`Z`, so the script reports :math:`D_{KL}[q \\| p/Z] = -\\mathrm{ELBO} + \\log Z`.

Run from the repository root::

    python -m examples.flow_vi                   # about 1 minute
    python -m examples.flow_vi --target u2 --flows 32

It writes ``flow_vi.png`` (the target density beside a histogram of draws from q),
``loss_curve.png`` and ``metrics.json``.
"""
import math
import time
from typing import Callable, Dict, Optional, Sequence

import torch
from matplotlib.figure import Figure

from examples.common import Logger, example_parser, parse, progress, setup, stop_early
from examples.plotting import save_figure, save_loss_curve
from pixyz_pyro.dist import CustomProb, Normal, TransformedDistribution
from pixyz_pyro.flows import FlowList, PlanarFlow
from pixyz_pyro.loss import ELBO, Expectation, LogProb, Parameter
from pixyz_pyro.model import Model


def _w1(z):
    return torch.sin(2 * math.pi * z[..., 0] / 4)


def _bump(a):
    return -0.5 * a ** 2


def log_u1(z):
    ring = _bump((z.norm(dim=-1) - 2) / 0.4)
    return ring + torch.logaddexp(_bump((z[..., 0] - 2) / 0.6), _bump((z[..., 0] + 2) / 0.6))


def log_u2(z):
    return _bump((z[..., 1] - _w1(z)) / 0.4)


def log_u3(z):
    w2 = 3 * torch.exp(_bump((z[..., 0] - 1) / 0.6))
    return torch.logaddexp(_bump((z[..., 1] - _w1(z)) / 0.35),
                           _bump((z[..., 1] - _w1(z) + w2) / 0.35))


def log_u4(z):
    w3 = 3 * torch.sigmoid((z[..., 0] - 1) / 0.3)
    return torch.logaddexp(_bump((z[..., 1] - _w1(z)) / 0.4),
                           _bump((z[..., 1] - _w1(z) + w3) / 0.35))


def log_banana(z):
    return _bump(z[..., 0] / 1.5) + _bump((z[..., 1] - 0.5 * z[..., 0] ** 2 + 1.5) / 0.5)


#: Unnormalised log-densities :math:`-U(z)` of ``(..., 2)`` points.
TARGETS: Dict[str, Callable] = {"u1": log_u1, "u2": log_u2, "u3": log_u3, "u4": log_u4,
                                "banana": log_banana}
EXTENT = 4.0


def grid(n: int = 300):
    g = torch.linspace(-EXTENT, EXTENT, n)
    gx, gy = torch.meshgrid(g, g, indexing="xy")
    return torch.stack([gx, gy], -1), (2 * EXTENT / (n - 1)) ** 2


def log_normaliser(log_p: Callable) -> float:
    """:math:`\\log Z = \\log \\int e^{-U}` on a fine grid over the plotted square."""
    pts, cell = grid(600)
    return float(torch.logsumexp(log_p(pts).reshape(-1), 0) + math.log(cell))


def build(target: str, flows: int):
    """The target ``p``, the flow approximation ``q`` and the annealed loss."""
    p = CustomProb(log_prob_function=TARGETS[target], var=["z"], name="p",
                   distribution_name=f"exp(-U) ({target})")
    prior = Normal(loc=torch.zeros(2), scale=torch.ones(2), var=["x"], name="q_0")
    flow = FlowList([PlanarFlow(2, constraint_u=True) for _ in range(flows)])
    q = TransformedDistribution(prior=prior, flow=flow, var=["z"], name="q")
    return p, q


def save_pictures(log_p: Callable, z: torch.Tensor, path, title: str) -> None:
    pts, _ = grid()
    fig = Figure(figsize=(9, 4.3))
    a, b = fig.subplots(1, 2)
    a.imshow(log_p(pts).exp().numpy(), origin="lower", cmap="magma",
             extent=(-EXTENT, EXTENT, -EXTENT, EXTENT))
    a.set_title("target $e^{-U(z)}$")
    b.hist2d(z[:, 0].numpy(), z[:, 1].numpy(), bins=150, cmap="magma",
             range=[[-EXTENT, EXTENT], [-EXTENT, EXTENT]])
    b.set_title("draws from the flow $q(z)$")
    for ax in (a, b):
        ax.set_aspect("equal")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Fit the flow; return the metrics (also written to ``<out>/metrics.json``)."""
    ap = example_parser("VI with planar flows on a 2-D toy density", batch_size=256,
                        lr=5e-3)
    ap.add_argument("--steps", type=int, default=1500, help="optimisation steps")
    ap.add_argument("--target", choices=sorted(TARGETS), default="u1")
    ap.add_argument("--flows", type=int, default=16)
    ap.add_argument("--anneal", type=int, default=500, help="steps of beta 0.01 -> 1")
    args = parse(ap, argv)  # draws per step: --batch-size
    out = setup(args, "flow_vi")
    p, q = build(args.target, args.flows)
    n = [args.batch_size]
    loss = Expectation(q, LogProb(q) - Parameter("beta") * LogProb(p), sample_shape=n).mean()
    neg_elbo = -ELBO(p, q, sample_shape=[4096]).mean()
    model = Model(loss, test_loss=neg_elbo, distributions=[q], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": args.lr})
    print(model)
    log_z = log_normaliser(TARGETS[args.target])

    logger, start, every = Logger(out, args.tensorboard), time.perf_counter(), 100
    running = 0.0
    for step in progress(range(1, args.steps + 1), args, desc="steps"):
        beta = min(1.0, 0.01 + step / max(args.anneal, 1))
        running += float(model.train({"beta": beta}))
        if step % every == 0 or stop_early(args, step) or step == args.steps:
            logger.log(step, train=running / (step % every or every),
                       kl=float(model.test()) + log_z)
            running = 0.0
        if stop_early(args, step):
            break
    seconds = time.perf_counter() - start
    kl = logger.curves["kl"][-1]
    metrics = {"kl_q_p": kl, "log_normaliser": log_z, "neg_elbo": kl - log_z,
               "steps": step, "seconds": seconds}
    print(f"KL[q || p] = {kl:.3f} nats (-ELBO {kl - log_z:.3f}, log Z {log_z:.3f}); "
          f"{step} steps in {seconds:.1f} s")
    save_loss_curve({"KL[q || p/Z] (4096 draws)": logger.curves["kl"]}, out / "loss_curve.png",
                    xlabel=f"x{every} steps", ylabel="nats", title="planar-flow VI")
    with torch.no_grad():
        z = q.sample(batch_n=100000)["z"]
    save_pictures(TARGETS[args.target], z, out / "flow_vi.png",
                  f"{args.flows} planar flows on {args.target}: KL[q || p] = {kl:.3f} nats")
    logger.save(metrics)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
