"""IWAE against a VAE on binarised Fashion-MNIST: the same networks, seed and epochs, two
objectives.

.. math::

    \\mathcal{L}_{VAE} = \\mathrm{mean}\\left(\\mathbb{E}_{q(z|x)}\\left[\\log
    \\frac{p(x|z) p(z)}{q(z|x)}\\right]\\right), \\qquad
    \\mathcal{L}_{k} = \\mathrm{mean}\\left(\\log \\frac1k \\sum_{i=1}^k
    \\frac{p(x|z_i) p(z_i)}{q(z_i|x)}\\right), \\quad z_i \\sim q(z|x)

``-ELBO(p, q).mean()`` trains the VAE and ``-IWAE(p, q, k=50, estimator="dreg").mean()``
the IWAE (Burda et al. 2016; the doubly-reparameterised encoder gradient of Tucker et al.
2018).  The encoder is ``784-h-h`` with a ``loc`` and a softplus ``scale`` head, the
decoder ``z-h-h-784`` Bernoulli (``h = 200``, ``z = 20``), Adam at 1e-3.  The pixels are
binarised once with a fixed seed (each pixel is 1 with probability its grey level), so
that ``p(x|z)`` is a true Bernoulli likelihood and the bounds are log-likelihoods.

After training, each model's test log-likelihood is estimated with ``--eval-k`` = 5000
importance samples, as Burda et al. do: :math:`\\log p(x) \\approx \\mathcal{L}_{5000}(x)`,
drawn ``--eval-chunk`` samples at a time and combined by a running ``logaddexp``, so that
memory stays that of one chunk (``--eval-chunk`` x 50 images) whatever ``k`` is; a
progress bar counts the chunks.  The difference between the two models is printed with
its standard error over the test images (paired).

Run from the repository root::

    python -m examples.iwae                      # 4 epochs on 10,000 images, k = 5000
    python -m examples.iwae --limit 60000 --epochs 20 --eval-images 10000
    python -m examples.iwae --eval-k 1000        # a quicker, looser estimate
    python -m examples.iwae --iaf                # also a VAE with an IAF posterior

It prints both models (formula, networks, optimizer), a progress bar, and per epoch the
training and test bounds; it writes ``loss_curve.png`` (the test bounds of both),
``samples.png`` (32 samples of each) and ``metrics.json`` to ``--out`` (default
``out/iwae``).
"""
import math
import time
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from examples.common import Logger, example_parser, parse, setup
from examples.data import iterate_minibatches, num_batches
from examples.nets import X_DIM, load_data, mlp, progress_bar, run_epoch
from examples.plotting import save_image_grid, save_loss_curve
from pixyz_pyro.dist import Bernoulli, Normal, TransformedDistribution
from pixyz_pyro.flows import IAF, FlowList, Reverse
from pixyz_pyro.loss import ELBO, IWAE
from pixyz_pyro.model import Model

EPOCHS = 4
#: Importance samples of the test log-likelihood (Burda et al. 2016).
EVAL_K = 5000


class Inference(Normal):
    """:math:`q(z|x)`: ``784-h-h`` tanh MLP, a linear ``loc`` and a softplus ``scale``."""

    def __init__(self, z_dim: int, h_dim: int, var: str = "z", name: str = "q"):
        super().__init__(var=[var], cond_var=["x"], name=name)
        self.hidden = mlp([X_DIM, h_dim, h_dim], activation=nn.Tanh, last=nn.Tanh())
        self.fc_loc = nn.Linear(h_dim, z_dim)
        self.fc_scale = nn.Linear(h_dim, z_dim)

    def forward(self, x):
        h = self.hidden(x)
        return {"loc": self.fc_loc(h), "scale": F.softplus(self.fc_scale(h)) + 1e-4}


class Generator(Bernoulli):
    """:math:`p(x|z)`: ``z-h-h-784`` tanh MLP, Bernoulli logits."""

    def __init__(self, z_dim: int, h_dim: int):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = mlp([z_dim, h_dim, h_dim, X_DIM], activation=nn.Tanh)

    def forward(self, z):
        return {"logits": self.net(z)}


def iaf_posterior(q0: Normal, z_dim: int, h_dim: int, layers: int = 2):
    """:math:`q(z|x)`: the Gaussian encoder's :math:`z_0` through ``layers`` IAF layers
    conditioned on ``x`` (feature order reversed between them)."""
    flows = []
    for i in range(layers):
        flows += [Reverse(z_dim)] if i else []
        flows.append(IAF(z_dim, [h_dim], cond_features=X_DIM))
    return TransformedDistribution(q0, FlowList(flows), var=["z"], name="q",
                                   flow_cond_var="x")


def build(objective: str, z_dim: int = 20, h_dim: int = 200, k: int = 50,
          estimator: str = "dreg"):
    """``(q, p, prior, loss)`` for ``objective`` ``"vae"``, ``"iwae"`` or ``"vae-iaf"``
    (the ELBO with an IAF posterior); the encoder and decoder are built first, so that
    under one seed every objective starts from the same weights."""
    iaf = objective == "vae-iaf"
    q = Inference(z_dim, h_dim, var="z0" if iaf else "z", name="q_0" if iaf else "q")
    p = Generator(z_dim, h_dim)
    if iaf:
        q = iaf_posterior(q, z_dim, h_dim)
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[z_dim], name="p_{prior}")
    if objective in ("vae", "vae-iaf"):
        loss = -ELBO(p * prior, q).mean()
    else:
        loss = -IWAE(p * prior, q, k=k, estimator=estimator).mean()
    return q, p, prior, loss


def binarise(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Each pixel 1 with probability its grey level, drawn once with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x.cpu(), generator=gen).to(x)


def chunks(k: int, chunk: int) -> List[int]:
    """The sizes of the draws, ``chunk`` at a time, that add up to ``k``.

    >>> chunks(5000, 250)[:2], len(chunks(5000, 250)), chunks(10, 4)
    ([250, 250], 20, [4, 4, 2])
    """
    return [chunk] * (k // chunk) + ([k % chunk] if k % chunk else [])


@torch.no_grad()
def log_likelihood(p, prior, q, x: torch.Tensor, k: int, chunk: int, batch: int, seed: int,
                   bar=None) -> torch.Tensor:
    """:math:`\\mathcal{L}_k(x)` per image (the importance-sampled :math:`\\log p(x)`), from
    ``k`` draws taken ``chunk`` at a time and combined as they come,
    :math:`\\log \\frac1k \\sum_c k_c e^{\\mathcal{L}_{k_c}}` by a running ``logaddexp``:
    memory is one chunk's.  ``bar`` (a tqdm bar) advances once per chunk."""
    sizes = chunks(k, chunk)
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(x), batch):
            xb = x[start:start + batch]
            total = None
            for n in sizes:
                part = IWAE(p * prior, q, k=n).eval({"x": xb}) + math.log(n)
                total = part if total is None else torch.logaddexp(total, part)
                if bar is not None:
                    bar.update(1)
            assert total is not None  # k >= 1
            out.append(total - math.log(k))
    return torch.cat(out)


@torch.no_grad()
def test_bound(loss, x: torch.Tensor, seed: int, batch: int = 500) -> float:
    """The loss averaged over ``x``, with fixed noise (the training stream untouched)."""
    total = 0.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(x), batch):
            xb = x[start:start + batch]
            total += float(loss.eval({"x": xb})) * len(xb)
    return total / len(x)


def train(objective: str, args, x_train, x_test, logger) -> Dict:
    """Train one model from the seed; returns its curves, networks and step count."""
    torch.manual_seed(args.seed)
    q, p, prior, loss = build(objective, args.z_dim, args.h_dim, args.k, args.estimator)
    for d in (q, p, prior):
        d.to(args.device)
    model = Model(loss, distributions=[p, q], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": args.lr})
    print(f"--- {objective} ---")
    print(model)
    gen = torch.Generator().manual_seed(args.seed)
    run = {"q": q, "p": p, "prior": prior, "loss": loss, "train": [], "test": [],
           "seconds": []}
    step = 0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        bar = progress_bar(num_batches(len(x_train), args.batch_size), args,
                           f"{objective} epoch {epoch}/{args.epochs}")
        batches = iterate_minibatches(x_train, None, args.batch_size, True, gen)
        value, step = run_epoch(model, batches, lambda x: {"x": x}, args, step, bar)
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - start
        test = test_bound(loss, x_test, args.seed + 1)
        run["train"].append(value)
        run["test"].append(test)
        run["seconds"].append(seconds)
        logger.log(epoch, **{f"{objective}/train": value, f"{objective}/test": test})
        print(f"epoch {epoch}: {objective} train {value:.2f}, test {test:.2f} nats/image "
              f"({seconds:.1f} s)", flush=True)
        if args.max_steps is not None and step >= args.max_steps:
            break
    run["steps"] = step
    return run


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train the VAE and the IWAE; return the metrics (also in ``<out>/metrics.json``)."""
    ap = example_parser("IWAE vs VAE on binarised Fashion-MNIST with pixyz_pyro",
                        epochs=EPOCHS)
    ap.set_defaults(limit=10000)
    ap.add_argument("--z-dim", type=int, default=20)
    ap.add_argument("--h-dim", type=int, default=200)
    ap.add_argument("--k", type=int, default=50, help="importance samples of the IWAE")
    ap.add_argument("--estimator", default="dreg", choices=["reparam", "dreg"],
                    help="the IWAE's gradient estimator")
    ap.add_argument("--eval-k", type=int, default=EVAL_K,
                    help=f"importance samples of the test log-likelihood (default {EVAL_K}, "
                         f"as in Burda et al.)")
    ap.add_argument("--eval-chunk", type=int, default=250,
                    help="importance samples drawn at a time (memory: chunk x 50 images)")
    ap.add_argument("--eval-images", type=int, default=500,
                    help="test images whose log-likelihood is estimated")
    ap.add_argument("--iaf", action="store_true",
                    help="also train a VAE whose q(z|x) is a Gaussian through 2 IAF layers")
    args = parse(ap, argv)
    out = setup(args, "iwae")
    dataset, x_train, _, x_test, _ = load_data(args, bernoulli=False)
    x_train, x_test = binarise(x_train, args.seed), binarise(x_test, args.seed + 1)
    print(f"pixels binarised once (seed {args.seed}): p(x|z) is a Bernoulli likelihood")
    logger = Logger(out, args.tensorboard)
    names = ("vae", "iwae") + (("vae-iaf",) if args.iaf else ())
    runs = {name: train(name, args, x_train, x_test, logger) for name in names}

    x_eval = x_test[:args.eval_images]
    ll = {}
    chunk, rows = min(args.eval_chunk, args.eval_k), 50
    for name, r in runs.items():
        for d in (r["q"], r["p"]):
            d.eval()
        bar = progress_bar(math.ceil(len(x_eval) / rows) * len(chunks(args.eval_k, chunk)),
                           args, f"{name}: log p(x), k={args.eval_k}")
        start = time.perf_counter()
        ll[name] = log_likelihood(r["p"], r["prior"], r["q"], x_eval, args.eval_k, chunk,
                                  rows, args.seed + 2, bar)
        if bar is not None:
            bar.close()
        print(f"{name}: log p(x) estimated with k={args.eval_k} on {len(x_eval)} images "
              f"({time.perf_counter() - start:.1f} s)", flush=True)
    diff = ll["iwae"] - ll["vae"]
    se = float(diff.std() / math.sqrt(len(diff))) if len(diff) > 1 else float("nan")
    for name in runs:
        print(f"{name}: test log p(x) >= {float(ll[name].mean()):.2f} nats/image "
              f"(IWAE bound, k={args.eval_k}, {len(x_eval)} images)")
    print(f"IWAE - VAE: {float(diff.mean()):+.2f} +- {se:.2f} nats/image (standard error, "
          f"paired over the test images)")
    if args.iaf:
        d_iaf = ll["vae-iaf"] - ll["vae"]
        se_iaf = float(d_iaf.std() / math.sqrt(len(d_iaf))) if len(d_iaf) > 1 else float("nan")
        print(f"VAE with IAF q - VAE: {float(d_iaf.mean()):+.2f} +- {se_iaf:.2f} nats/image")

    curves = {"VAE: test -ELBO": runs["vae"]["test"],
              f"IWAE: test -IWAE-{args.k} bound": runs["iwae"]["test"]}
    if args.iaf:
        curves["VAE, IAF q: test -ELBO"] = runs["vae-iaf"]["test"]
    save_loss_curve(curves,
                    out / "loss_curve.png", ylabel="negative bound (nats/image)",
                    title=f"{dataset}: VAE vs IWAE (k={args.k}, {args.estimator})")
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        z = runs["vae"]["prior"].sample(batch_n=32, return_all=False)
        grids = [torch.sigmoid(r["p"](**z)["logits"]) for r in runs.values()]
    save_image_grid(torch.cat(grids).cpu(), out / "samples.png", nrow=16,
                    title="p(x|z) means, z ~ p(z), two rows each: " + ", ".join(runs))
    metrics = {"dataset": dataset, "k": args.k, "estimator": args.estimator,
               "eval_k": args.eval_k, "eval_images": len(x_eval),
               "train_neg_elbo": runs["vae"]["train"], "test_neg_elbo": runs["vae"]["test"],
               "train_neg_iwae": runs["iwae"]["train"], "test_neg_iwae": runs["iwae"]["test"],
               "epoch_seconds": {n: r["seconds"] for n, r in runs.items()},
               "test_log_likelihood": {n: float(v.mean()) for n, v in ll.items()},
               "iwae_minus_vae": float(diff.mean()), "iwae_minus_vae_se": se,
               "steps": runs["iwae"]["steps"]}
    if args.iaf:
        metrics.update(train_neg_elbo_iaf=runs["vae-iaf"]["train"],
                       test_neg_elbo_iaf=runs["vae-iaf"]["test"],
                       iaf_minus_vae=float(d_iaf.mean()), iaf_minus_vae_se=se_iaf)
    logger.save(metrics)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
