"""A deep Markov model (Krishnan et al., 2017) on bouncing Fashion-MNIST items.

.. math::

    p(x_{1:T}, z_{1:T}) = \\prod_t p(x_t|z_t)\\, p(z_t|z_{t-1}), \\qquad
    q(z_{1:T}|x_{1:T}) = \\prod_t q(z_t|h_t, z_{t-1}), \\quad h = \\mathrm{RNN}(x_{T:1})

    \\mathcal{L} = \\mathrm{mean}\\, \\mathbb{E}_{f(h|x)}\\left[\\sum_{t} H[q(z_t|h_t, z_{t-1}),
    p(x_t|z_t)] + D_{KL}[q(z_t|h_t, z_{t-1}) \\| p(z_t|z_{t-1})]\\right]

as Pixyz's DMM example writes it: the step loss is ``CrossEntropy(q, p) +
KullbackLeibler(q, prior)``, ``IterativeLoss(step_loss, max_iter=T, series_var=["x", "h"],
update_value={"z": "z_prev"})`` runs it over time, and the outer expectation is over the
backward GRU ``f(h|x)`` (a ``Deterministic``).  The data: a real Fashion-MNIST item, shrunk
to 12x12, bounces around a 20x20 canvas (:func:`examples.sequences.bouncing_items`); grey
levels in [0, 1] are scored as Bernoulli (Pixyz's convention).

Run from the repository root::

    python -m examples.dmm               # about 2 minutes on 2 cores
    python -m examples.dmm --epochs 30

It writes ``predictions.png`` (test sequences: truth, then the model's reconstruction of
the first frames and its prediction of the rest), ``samples.png`` (sequences generated
from scratch), ``loss_curve.png`` and ``metrics.json``.
"""
import time
from typing import Dict, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from examples.common import Logger, example_parser, parse, progress, setup, stop_early
from examples.data import load_dataset, resolve_name
from examples.plotting import save_image_grid, save_loss_curve
from examples.sequences import bouncing_items
from pixyz_pyro.dist import Bernoulli, Deterministic, Normal
from pixyz_pyro.loss import CrossEntropy, IterativeLoss, KullbackLeibler
from pixyz_pyro.model import Model


class RNN(Deterministic):
    """:math:`h = f(x)`: a GRU run backwards in time over the whole sequence."""

    def __init__(self, x_dim: int, h_dim: int):
        super().__init__(var=["h"], cond_var=["x"], name="f")
        self.gru = nn.GRU(x_dim, h_dim)

    def forward(self, x):
        h, _ = self.gru(x.flip(0))
        return {"h": h.flip(0)}


class Generator(Bernoulli):
    """:math:`p(x_t|z_t)`: an MLP with sigmoid probabilities."""

    def __init__(self, z_dim: int, h_dim: int, x_dim: int):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = nn.Sequential(nn.Linear(z_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, h_dim),
                                 nn.ReLU(), nn.Linear(h_dim, x_dim))

    def forward(self, z):
        return {"probs": torch.sigmoid(self.net(z))}


class Transition(Normal):
    """:math:`p(z_t|z_{t-1})`: a gated residual transition."""

    def __init__(self, z_dim: int, h_dim: int):
        super().__init__(var=["z"], cond_var=["z_prev"], name="p")
        self.hidden = nn.Sequential(nn.Linear(z_dim, h_dim), nn.ReLU())
        self.fc_gate = nn.Linear(h_dim, z_dim)
        self.fc_loc = nn.Linear(h_dim, z_dim)
        self.fc_scale = nn.Linear(h_dim, z_dim)

    def forward(self, z_prev):
        h = self.hidden(z_prev)
        gate = torch.sigmoid(self.fc_gate(h))
        loc = (1 - gate) * z_prev + gate * self.fc_loc(h)
        return {"loc": loc, "scale": F.softplus(self.fc_scale(h)) + 1e-3}


class Inference(Normal):
    """:math:`q(z_t|h_t, z_{t-1})`: the combiner of Krishnan et al."""

    def __init__(self, z_dim: int, h_dim: int):
        super().__init__(var=["z"], cond_var=["h", "z_prev"], name="q")
        self.fc_z = nn.Linear(z_dim, h_dim)
        self.fc_loc = nn.Linear(h_dim, z_dim)
        self.fc_scale = nn.Linear(h_dim, z_dim)

    def forward(self, h, z_prev):
        hc = 0.5 * (torch.tanh(self.fc_z(z_prev)) + h)
        return {"loc": self.fc_loc(hc), "scale": F.softplus(self.fc_scale(hc)) + 1e-3}


def build(x_dim: int, z_dim: int, h_dim: int, steps: int):
    """The four distributions and the loss, as in Pixyz's DMM example."""
    rnn, p = RNN(x_dim, h_dim), Generator(z_dim, h_dim, x_dim)
    prior, q = Transition(z_dim, h_dim), Inference(z_dim, h_dim)
    step_loss = CrossEntropy(q, p) + KullbackLeibler(q, prior)
    loss = IterativeLoss(step_loss, max_iter=steps, series_var=["x", "h"],
                         update_value={"z": "z_prev"}).expectation(rnn).mean()
    return rnn, p, prior, q, loss


@torch.no_grad()
def reconstruct_and_predict(rnn, p, prior, q, x: torch.Tensor, observed: int) -> torch.Tensor:
    """Infer :math:`z_{1:k}` from the first ``k = observed`` frames only, then roll the
    transition's mean forward; returns the decoded frames ``(T, B, D)``."""
    h = rnn.sample({"x": x[:observed]})["h"]
    z = torch.zeros(x.shape[1], prior.fc_loc.out_features)
    frames = []
    for t in range(x.shape[0]):
        if t < observed:
            z = q.sample({"h": h[t], "z_prev": z}, return_all=False)["z"]
        else:
            z = prior.sample_mean({"z_prev": z})
        frames.append(p.sample_mean({"z": z}))
    return torch.stack(frames)


@torch.no_grad()
def generate(p, prior, n: int, steps: int, z_dim: int) -> torch.Tensor:
    """Sequences from scratch: :math:`z_t \\sim p(z_t|z_{t-1})`, frames
    :math:`\\mathbb{E}[x_t|z_t]`."""
    z, frames = torch.zeros(n, z_dim), []
    for _ in range(steps):
        z = prior.sample({"z_prev": z}, return_all=False)["z"]
        frames.append(p.sample_mean({"z": z}))
    return torch.stack(frames)


def as_rows(*seqs: torch.Tensor) -> torch.Tensor:
    """Interleave sequences ``(T, B, D)`` as image rows: sequence b of each, in turn."""
    return torch.stack(seqs, 1).permute(2, 1, 0, 3).reshape(-1, seqs[0].shape[-1])


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train the DMM; return the metrics (also written to ``<out>/metrics.json``)."""
    ap = example_parser("Deep Markov model on bouncing Fashion-MNIST items", epochs=12,
                        batch_size=64)
    ap.add_argument("--steps", type=int, default=12, help="frames per sequence")
    ap.add_argument("--z-dim", type=int, default=16)
    ap.add_argument("--h-dim", type=int, default=128)
    ap.set_defaults(limit=8000, test_limit=500)
    args = parse(ap, argv)
    out = setup(args, "dmm")
    gen = torch.Generator().manual_seed(args.seed)
    images, _ = load_dataset(args.dataset, "train", args.data_dir, args.limit)
    test_images, _ = load_dataset(args.dataset, "test", args.data_dir, args.test_limit)
    x_train = bouncing_items(images, args.steps, side=12, generator=gen)
    x_test = bouncing_items(test_images, args.steps, side=12, generator=gen)
    print(f"{resolve_name(args.dataset, args.data_dir)}: {x_train.shape[1]} train / "
          f"{x_test.shape[1]} test sequences of {args.steps} frames of 20x20")

    rnn, p, prior, q, loss = build(x_train.shape[-1], args.z_dim, args.h_dim, args.steps)
    model = Model(loss, distributions=[rnn, p, prior, q], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": args.lr}, clip_grad_norm=10.0)
    print(model)

    def inputs(x):
        return {"x": x, "z_prev": torch.zeros(x.shape[1], args.z_dim)}

    logger, step, start = Logger(out, args.tensorboard), 0, time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(x_train.shape[1], generator=gen)
        total, seen = 0.0, 0
        for i in progress(range(0, len(perm), args.batch_size), args,
                          desc=f"epoch {epoch}/{args.epochs}", leave=False):
            batch = x_train[:, perm[i:i + args.batch_size]]
            total += float(model.train(inputs(batch))) * batch.shape[1]
            seen, step = seen + batch.shape[1], step + 1
            if stop_early(args, step):
                break
        torch.manual_seed(args.seed + 1)
        test = float(model.test(inputs(x_test)))
        logger.log(epoch, train=total / seen / args.steps, test=test / args.steps)
        print(f"epoch {epoch}: train {total / seen / args.steps:.2f}, test "
              f"{test / args.steps:.2f} nats/frame (negative ELBO)", flush=True)
        if stop_early(args, step):
            break
    seconds = time.perf_counter() - start

    observed = args.steps // 2
    shown = x_test[:, :6]
    pred = reconstruct_and_predict(rnn, p, prior, q, shown, observed)
    mse = float(((pred[observed:] - shown[observed:]) ** 2).sum(-1).mean())
    still = float(((shown[observed - 1:observed] - shown[observed:]) ** 2).sum(-1).mean())
    save_image_grid(as_rows(shown, pred), out / "predictions.png", nrow=args.steps,
                    title=f"pairs of rows: test sequence / model (first {observed} frames "
                          f"reconstructed, then predicted)")
    save_image_grid(as_rows(generate(p, prior, 6, args.steps, args.z_dim)),
                    out / "samples.png", nrow=args.steps, title="sequences sampled from p")
    save_loss_curve(logger.curves, out / "loss_curve.png",
                    ylabel="negative ELBO (nats/frame)", title="deep Markov model")
    metrics = {"test_neg_elbo_per_frame": logger.curves["test"][-1],
               "prediction_sq_error_per_frame": mse, "last_frame_sq_error_per_frame": still,
               "steps": step, "seconds": seconds}
    print(f"test negative ELBO {metrics['test_neg_elbo_per_frame']:.2f} nats/frame; "
          f"prediction squared error {mse:.2f}/frame (repeating the last frame: {still:.2f}); "
          f"{step} steps in {seconds:.0f} s")
    logger.save(metrics)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
