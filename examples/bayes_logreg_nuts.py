"""Bayesian logistic regression in the Distribution API, sampled with Pyro's NUTS.

.. math::

    p(y, w | x) = \\prod_{n=1}^{N} \\mathrm{Bernoulli}(y_n; \\sigma(x_n^\\top w))
    \\; \\mathcal{N}(w; 0, \\tau^2 I)

The model is two pixyz_pyro distributions, ``lik * prior``.  ``to_pyro`` turns the joint
into a Pyro program (``w`` a global site outside the data plate, ``y`` observed), and
``pyro.infer.MCMC(NUTS(...))`` samples :math:`p(w|x, y)`.  The same joint without
``observed`` gives ``Predictive`` its posterior predictive :math:`p(y^*|x^*, x, y)`.
Data are generated from known coefficients, so the posterior intervals can be checked
against the truth.

Run from the repository root::

    python -m examples.bayes_logreg_nuts                  # about 30 seconds
    python -m examples.bayes_logreg_nuts --num-samples 1000 --warmup 500

It writes ``trace.png`` (the chains and the log joint per draw), ``posterior.png``
(posterior histograms with the true coefficients) and ``metrics.json``.
"""
import time
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from pyro.infer import MCMC, NUTS, Predictive

from examples.common import Logger, example_parser, parse, setup
from examples.plotting import save_figure, save_loss_curve
from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.infer import to_pyro
from pixyz_pyro.loss import LogProb

TRUE_W = [-0.5, 1.5, -2.0, 0.8, 0.0]  # bias first


class Likelihood(Bernoulli):
    """:math:`p(y|x, w) = \\mathrm{Bernoulli}(\\sigma(x^\\top w))`; ``x`` carries a column of
    ones for the bias."""

    def __init__(self):
        super().__init__(var=["y"], cond_var=["x", "w"], name="p")

    def forward(self, x, w):
        return {"logits": (x * w).sum(-1, keepdim=True)}


def make_data(n: int, seed: int):
    """``n`` inputs (bias column first) and labels from :data:`TRUE_W`."""
    g = torch.Generator().manual_seed(seed)
    d = len(TRUE_W)
    x = torch.cat([torch.ones(n, 1), torch.randn(n, d - 1, generator=g)], 1)
    probs = torch.sigmoid(x @ torch.tensor(TRUE_W)).unsqueeze(-1)
    return x, torch.bernoulli(probs, generator=g)


def save_trace(ws: np.ndarray, log_joint: np.ndarray, path) -> None:
    """One panel per coefficient (the chain), and the log joint per draw."""
    d = ws.shape[1]
    fig = Figure(figsize=(8, 1.6 * (d + 1)))
    axes = fig.subplots(d + 1, 1, sharex=True)
    for i, ax in enumerate(axes[:-1]):
        ax.plot(ws[:, i], lw=0.6)
        ax.axhline(TRUE_W[i], color="k", ls="--", lw=1)
        ax.set_ylabel(f"$w_{i}$" if i else "bias")
    axes[-1].plot(log_joint, lw=0.6, color="C3")
    axes[-1].set_ylabel("log p(y, w|x)")
    axes[-1].set_xlabel("NUTS draw (after warm-up)")
    fig.suptitle("NUTS chain; dashed: true coefficients", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def save_posterior(ws: np.ndarray, lo: np.ndarray, hi: np.ndarray, path) -> None:
    """Posterior histograms, 90% intervals (shaded) and the true values (red)."""
    d = ws.shape[1]
    fig = Figure(figsize=(2.6 * d, 2.6))
    for i, ax in enumerate(fig.subplots(1, d)):
        ax.hist(ws[:, i], bins=30, color="C0", alpha=0.7, density=True)
        ax.axvspan(lo[i], hi[i], color="C0", alpha=0.15)
        ax.axvline(TRUE_W[i], color="C3", lw=2)
        ax.set_title(f"$w_{i}$" if i else "bias", fontsize=10)
        ax.set_yticks([])
    fig.suptitle("posterior p(w|x, y): 90% interval shaded, truth in red", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Sample the posterior; return the metrics (also written to ``<out>/metrics.json``)."""
    ap = example_parser("Bayesian logistic regression with NUTS through to_pyro")
    ap.add_argument("--n-train", type=int, default=400)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--num-samples", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--prior-scale", type=float, default=2.0)
    args = parse(ap, argv)
    if args.max_steps is not None:  # smoke tests: a few draws
        args.num_samples, args.warmup = max(4, args.max_steps), max(2, args.max_steps)
    out = setup(args, "bayes_logreg_nuts")
    x, y = make_data(args.n_train + args.n_test, args.seed)
    x_train, y_train, x_test, y_test = x[:args.n_train], y[:args.n_train], \
        x[args.n_train:], y[args.n_train:]

    prior = Normal(loc=0.0, scale=args.prior_scale, var=["w"], features_shape=[len(TRUE_W)],
                   name="p_{prior}")
    lik = Likelihood()
    joint = lik * prior
    print(joint)
    print("log joint:", LogProb(lik).sum() + LogProb(prior).sum())

    model = to_pyro(joint, observed=["y"], global_vars=["w"])
    mcmc = MCMC(NUTS(model), num_samples=args.num_samples, warmup_steps=args.warmup,
                num_chains=1, disable_progbar=args.no_progress)
    start = time.perf_counter()
    mcmc.run(x=x_train, y=y_train)
    seconds = time.perf_counter() - start
    ws = mcmc.get_samples()["w"].reshape(args.num_samples, -1)

    lo, hi = np.quantile(ws.numpy(), [0.05, 0.95], axis=0)
    truth = np.array(TRUE_W)
    covered = int(((lo <= truth) & (truth <= hi)).sum())
    for i, (m, a, b) in enumerate(zip(ws.mean(0).tolist(), lo, hi)):
        print(f"{'bias' if i == 0 else f'w_{i}':>4}: true {TRUE_W[i]:+.2f}, posterior mean "
              f"{m:+.2f}, 90% interval [{a:+.2f}, {b:+.2f}]")

    predictive = Predictive(to_pyro(joint, global_vars=["w"]), posterior_samples={
        "w": ws.reshape(args.num_samples, 1, -1)}, return_sites=["y"])
    y_draws = predictive(x=x_test)["y"]  # (draws, N, 1)
    accuracy = float(((y_draws.float().mean(0) > 0.5).float() == y_test).float().mean())
    oracle = float((((x_test @ torch.tensor(TRUE_W)) > 0).float().unsqueeze(-1)
                    == y_test).float().mean())

    with torch.no_grad():
        log_joint = torch.stack([LogProb(lik).eval({"x": x_train, "y": y_train,
                                                    "w": w.unsqueeze(0)}).sum()
                                 for w in ws]) + prior.get_log_prob({"w": ws})
    eff = mcmc.diagnostics()["w"]["n_eff"].reshape(-1)
    metrics = {"posterior_mean": ws.mean(0).tolist(), "interval_90": [lo.tolist(), hi.tolist()],
               "true_w": TRUE_W, "covered_90": covered, "test_accuracy": accuracy,
               "oracle_accuracy": oracle, "seconds": seconds,
               "min_n_eff": float(eff.min()) if bool(eff.isfinite().all()) else None}
    print(f"{covered}/{len(TRUE_W)} true coefficients inside their 90% intervals; posterior "
          f"predictive test accuracy {accuracy:.3f} (true coefficients: {oracle:.3f}); "
          f"NUTS {seconds:.1f} s, min n_eff {eff.min():.0f}")
    save_trace(ws.numpy(), log_joint.numpy(), out / "trace.png")
    save_posterior(ws.numpy(), lo, hi, out / "posterior.png")
    save_loss_curve({"log p(y, w|x)": log_joint}, out / "loss_curve.png", xlabel="draw",
                    ylabel="log joint", title="log joint along the NUTS chain")
    Logger(out).save(metrics)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
