"""Temporal-difference VAE (Gregor et al., 2019) on sliding Fashion-MNIST items.

A belief state :math:`b_t = \\mathrm{LSTM}(x_{\\le t})` summarises the past.  For a time
:math:`t_1` and a jump to :math:`t_2 = t_1 + d`, with the paper's five distributions --
beliefs :math:`p_B(z|b)`, the smoothing posterior :math:`q(z_{t_1}|z_{t_2}, b_{t_1}, b_{t_2})`,
the jumpy transition :math:`p_T(z_{t_2}|z_{t_1}, d)` and the decoder
:math:`p_D(x_{t_2}|z_{t_2})` -- the step loss is

.. math::

    \\mathcal{L}_{t} = \\mathbb{E}_{p_B(z_{t_2}|b_{t_2})}\\Big[D_{KL}[q \\| p_B(z_{t_1}|b_{t_1})]
    + \\mathbb{E}_{q}\\big[-\\log p_T - \\log p_D + \\log p_B(z_{t_2}|b_{t_2})\\big]\\Big]

written as the paper writes it with ``KullbackLeibler``, ``LossExpectation`` and ``NLL``.
``IterativeLoss(step_loss, max_iter=T-1, series_var=["x", "b"], slice_step=slice_step)``
sums it over :math:`t_1`: ``slice_step`` is a ``Deterministic`` that receives the step
index ``t`` (supplied by ``IterativeLoss``), draws the jump :math:`d` and picks
:math:`x_{t_2}, b_{t_1}, b_{t_2}`.  The outer ``LossExpectation(belief_state_net, ...)``
runs the LSTM once per sequence.

The data follow the paper's moving-MNIST toy: a real Fashion-MNIST item, shrunk to 12x12,
slides one pixel per frame to the left or to the right along a 12x24 strip and bounces off
its ends (:func:`examples.sequences.sliding_items`).  The model has to infer the item, its
position and its direction from the frames it has seen, then roll them forward in latent
space.

Run from the repository root::

    python -m examples.tdvae               # about 2 minutes on 2 cores
    python -m examples.tdvae --epochs 20

It writes ``rollouts.png`` (test sequences: truth, then the model's rollout from the
belief after the first frames), ``loss_curve.png`` and ``metrics.json``.
"""
import time
from typing import Dict, Optional, Sequence

import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F

from examples.common import Logger, example_parser, parse, progress, setup, stop_early
from examples.data import load_dataset, resolve_name
from examples.plotting import image_grid, save_figure, save_loss_curve
from examples.sequences import sliding_items
from pixyz_pyro.dist import Bernoulli, Deterministic, Normal
from pixyz_pyro.loss import NLL, IterativeLoss, KullbackLeibler, LossExpectation
from pixyz_pyro.model import Model


def mlp(*sizes: int) -> nn.Sequential:
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class NormalHead(Normal):
    """A Normal whose ``loc`` and softplus ``scale`` come from an MLP of its inputs."""

    def __init__(self, var, cond_var, name, in_dim: int, h_dim: int, z_dim: int):
        super().__init__(var=var, cond_var=cond_var, name=name)
        self.net = mlp(in_dim, h_dim, h_dim, 2 * z_dim)

    def forward(self, **inputs):
        loc, scale = self.net(torch.cat([inputs[v] for v in self.cond_var], -1)).chunk(2, -1)
        return {"loc": loc, "scale": F.softplus(scale) + 1e-3}


class BeliefStateNet(Deterministic):
    """:math:`b_t = \\mathrm{LSTM}(x_{\\le t})`, the belief state at every time."""

    def __init__(self, x_dim: int, b_dim: int):
        super().__init__(var=["b"], cond_var=["x"], name="f")
        self.lstm = nn.LSTM(x_dim, b_dim)

    def forward(self, x):
        return {"b": self.lstm(x)[0]}


class SliceStep(Deterministic):
    """Given the step ``t``, jump to :math:`t_2 = t + d`, :math:`d \\sim U\\{1..D\\}`
    (kept inside the sequence); return :math:`x_{t_2}, b_{t_1}, b_{t_2}` and ``d``."""

    def __init__(self, max_jump: int):
        super().__init__(var=["x_t2", "b_t1", "b_t2", "d"], cond_var=["t", "x", "b"],
                         name="s")
        self.max_jump = max_jump

    def forward(self, t, x, b):
        n = x.shape[1]
        d = torch.randint(1, self.max_jump + 1, (n,), device=x.device)
        d = d.clamp(max=x.shape[0] - 1 - t)
        rows = torch.arange(n, device=x.device)
        return {"x_t2": x[t + d, rows], "b_t1": b[t], "b_t2": b[t + d, rows],
                "d": (d.to(x.dtype) / self.max_jump).unsqueeze(-1)}


class Decoder(Bernoulli):
    """:math:`p_D(x_{t_2}|z_{t_2})`."""

    def __init__(self, z_dim: int, h_dim: int, x_dim: int):
        super().__init__(var=["x_t2"], cond_var=["z_t2"], name="p_D")
        self.net = mlp(z_dim, h_dim, h_dim, x_dim)

    def forward(self, z_t2):
        return {"probs": torch.sigmoid(self.net(z_t2))}


def build(x_dim: int, z_dim: int, b_dim: int, h_dim: int, steps: int, max_jump: int):
    """The distributions and the loss, in the paper's notation."""
    belief_state_net, slice_step = BeliefStateNet(x_dim, b_dim), SliceStep(max_jump)
    p_b1 = NormalHead(["z_t1"], ["b_t1"], "p_B", b_dim, h_dim, z_dim)
    p_b2 = p_b1.replace_var(z_t1="z_t2", b_t1="b_t2")
    q = NormalHead(["z_t1"], ["z_t2", "b_t1", "b_t2"], "q", z_dim + 2 * b_dim, h_dim, z_dim)
    p_t = NormalHead(["z_t2"], ["z_t1", "d"], "p_T", z_dim + 1, h_dim, z_dim)
    p_d = Decoder(z_dim, h_dim, x_dim)

    kl = KullbackLeibler(q, p_b1)
    step_loss = LossExpectation(p_b2, kl + LossExpectation(q, NLL(p_t) + NLL(p_d) - NLL(p_b2)))
    _loss = IterativeLoss(step_loss, max_iter=steps - 1, series_var=["x", "b"],
                          slice_step=slice_step)
    loss = LossExpectation(belief_state_net, _loss).mean()
    return (belief_state_net, p_b1, q, p_t, p_d), loss


@torch.no_grad()
def rollout(belief_state_net, p_b1, p_t, p_d, x: torch.Tensor, observed: int,
            max_jump: int) -> torch.Tensor:
    """Belief after ``observed`` frames, :math:`z \\sim p_B(z|b)`, then one-step jumps
    with the transition's mean; returns decoded frames ``(T - observed, B, D)``."""
    b = belief_state_net.sample({"x": x[:observed]})["b"][-1]
    z = p_b1.sample({"b_t1": b}, return_all=False)["z_t1"]
    d = torch.full((x.shape[1], 1), 1.0 / max_jump)
    frames = []
    for _ in range(x.shape[0] - observed):
        z = p_t.sample_mean({"z_t1": z, "d": d})
        frames.append(p_d.sample_mean({"z_t2": z}))
    return torch.stack(frames)


def save_strips(frames: torch.Tensor, path, ncol: int, title: str) -> None:
    """A grid of non-square ``(N, H, W)`` frames, ``ncol`` per row, at their aspect."""
    grid = image_grid(frames, nrow=ncol)
    fig = Figure(figsize=(grid.shape[1] / 45, grid.shape[0] / 45 + 0.35))
    ax = fig.add_axes((0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    fig.suptitle(title, fontsize=9, y=0.995, va="top")
    save_figure(fig, path, dpi=100)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train TD-VAE; return the metrics (also written to ``<out>/metrics.json``)."""
    ap = example_parser("TD-VAE on sliding Fashion-MNIST items", epochs=20, batch_size=64,
                        lr=2e-3)
    ap.add_argument("--steps", type=int, default=12, help="frames per sequence")
    ap.add_argument("--max-jump", type=int, default=3)
    ap.add_argument("--z-dim", type=int, default=16)
    ap.add_argument("--b-dim", type=int, default=64)
    ap.add_argument("--h-dim", type=int, default=128)
    ap.set_defaults(limit=5000, test_limit=500)
    args = parse(ap, argv)
    out = setup(args, "tdvae")
    gen = torch.Generator().manual_seed(args.seed)
    images, _ = load_dataset(args.dataset, "train", args.data_dir, args.limit)
    test_images, _ = load_dataset(args.dataset, "test", args.data_dir, args.test_limit)
    x_train = sliding_items(images, args.steps, generator=gen)
    x_test = sliding_items(test_images, args.steps, generator=gen)
    print(f"{resolve_name(args.dataset, args.data_dir)}: {x_train.shape[1]} train / "
          f"{x_test.shape[1]} test sequences of {args.steps} frames of 12x24")

    dists, loss = build(x_train.shape[-1], args.z_dim, args.b_dim, args.h_dim, args.steps,
                        args.max_jump)
    belief_state_net, p_b1, q, p_t, p_d = dists
    model = Model(loss, distributions=list(dists), optimizer=torch.optim.Adam,
                  optimizer_params={"lr": args.lr}, clip_grad_norm=10.0)
    print(model)

    logger, step, start = Logger(out, args.tensorboard), 0, time.perf_counter()
    per = args.steps - 1
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(x_train.shape[1], generator=gen)
        total, seen = 0.0, 0
        for i in progress(range(0, len(perm), args.batch_size), args,
                          desc=f"epoch {epoch}/{args.epochs}", leave=False):
            batch = x_train[:, perm[i:i + args.batch_size]]
            total += float(model.train({"x": batch})) * batch.shape[1]
            seen, step = seen + batch.shape[1], step + 1
            if stop_early(args, step):
                break
        torch.manual_seed(args.seed + 1)
        test = float(model.test({"x": x_test}))
        logger.log(epoch, train=total / seen / per, test=test / per)
        print(f"epoch {epoch}: train {total / seen / per:.2f}, test {test / per:.2f} "
              f"nats per step", flush=True)
        if stop_early(args, step):
            break
    seconds = time.perf_counter() - start

    observed = args.steps // 2
    shown = x_test[:, :6]
    torch.manual_seed(args.seed + 2)
    pred = rollout(belief_state_net, p_b1, p_t, p_d, shown, observed, args.max_jump)
    full = torch.cat([shown[:observed], pred])
    mse = float(((pred - shown[observed:]) ** 2).sum(-1).mean())
    still = float(((shown[observed - 1:observed] - shown[observed:]) ** 2).sum(-1).mean())
    rows = torch.stack([shown, full], 1).permute(2, 1, 0, 3).reshape(-1, 12, 24)
    save_strips(rows, out / "rollouts.png", args.steps,
                f"pairs of rows: test sequence / its first {observed} frames, then the "
                f"TD-VAE rollout")
    save_loss_curve(logger.curves, out / "loss_curve.png", ylabel="loss (nats per step)",
                    title="TD-VAE")
    metrics = {"test_loss_per_step": logger.curves["test"][-1],
               "rollout_sq_error_per_frame": mse, "last_frame_sq_error_per_frame": still,
               "steps": step, "seconds": seconds}
    print(f"test loss {metrics['test_loss_per_step']:.2f} nats per step; rollout squared "
          f"error {mse:.2f}/frame (repeating the last frame: {still:.2f}); {step} steps in "
          f"{seconds:.0f} s")
    logger.save(metrics)
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
