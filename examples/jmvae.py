"""A multimodal VAE over images and labels, with a product-of-experts encoder.

Two modalities, the image ``x`` and its one-hot label ``y``, share one code ``z``:

.. math::

    p(x, y, z) = p(x|z) p(y|z) p_{prior}(z), \\qquad
    q(z|x, y) \\propto p_{prior}(z) q(z|x) q(z|y)

The encoder is a ``ProductOfNormal`` of one Normal expert per modality (Wu & Goodman 2018);
the same experts give :math:`q(z|x) \\propto p(z) q(z|x)` and :math:`q(z|y) \\propto p(z)
q(z|y)` when a modality is missing. Two objectives, chosen with ``--objective``:

* ``jmvae`` (default; JMVAE-kl, Suzuki, Nakayama & Matsuo 2016): the joint ELBO plus
  :math:`\\alpha` times the KL from the joint encoder to each unimodal one,

  .. math::

      \\mathcal{L} = \\mathrm{mean}\\big(D_{KL}[q(z|x,y) \\| p(z)]
      - \\mathbb{E}_{q(z|x,y)}[\\log p(x|z) + \\lambda \\log p(y|z)]
      + \\alpha D_{KL}[q(z|x,y) \\| q(z|x)] + \\alpha D_{KL}[q(z|x,y) \\| q(z|y)]\\big)

* ``mvae`` (MVAE): the sum of the joint and the two unimodal ELBOs.

:math:`\\lambda` (``--label-weight``) scales the label's log-likelihood, which is tiny next to
784 pixels'. Pixels are grey levels in ``[0, 1]`` scored by a ``Bernoulli`` (Pixyz's
semantics: the binary cross-entropy). It reports the test accuracy of predicting the label
from the image alone (:math:`\\arg\\max p(y|z)`, :math:`z` the mean of :math:`q(z|x)`) and
writes ``samples.png``: images generated from labels alone, :math:`z \\sim q(z|y)`.

Run from the repository root::

    python -m examples.jmvae               # 10 epochs, JMVAE-kl
    python -m examples.jmvae --objective mvae
"""
from typing import Dict, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from examples.common import Logger, example_parser, parse, setup
from examples.data import class_names, iterate_minibatches
from examples.nets import X_DIM, epoch_report, fit_options, load_data, metrics_of, mlp, one_hot
from examples.plotting import save_image_grid, save_loss_curve
from pixyz_pyro.dist import Bernoulli, Categorical, Normal, ProductOfNormal
from pixyz_pyro.loss import Expectation as E
from pixyz_pyro.loss import KullbackLeibler, LogProb
from pixyz_pyro.model import Model, fit

EPOCHS = 10
N_CLASSES = 10


class Expert(Normal):
    """:math:`q(z|\\cdot)` for one modality: an MLP, a ``loc`` and a softplus ``scale``."""

    def __init__(self, cond: str, in_dim: int, z_dim: int, h_dim: int):
        super().__init__(var=["z"], cond_var=[cond], name="q")
        self.hidden = mlp([in_dim, h_dim, h_dim], last=nn.ReLU())
        self.fc_loc = nn.Linear(h_dim, z_dim)
        self.fc_scale = nn.Linear(h_dim, z_dim)

    def forward(self, **inputs):
        h = self.hidden(inputs[self.cond_var[0]])
        return {"loc": self.fc_loc(h), "scale": F.softplus(self.fc_scale(h))}


class ImageDecoder(Bernoulli):
    """:math:`p(x|z)`."""

    def __init__(self, z_dim: int, h_dim: int):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = mlp([z_dim, h_dim, h_dim, X_DIM], last=nn.Sigmoid())

    def forward(self, z):
        return {"probs": self.net(z)}


class LabelDecoder(Categorical):
    """:math:`p(y|z)`."""

    def __init__(self, z_dim: int, h_dim: int):
        super().__init__(var=["y"], cond_var=["z"], name="p")
        self.net = mlp([z_dim, h_dim, N_CLASSES])

    def forward(self, z):
        return {"probs": F.softmax(self.net(z), -1)}


def build(z_dim: int = 20, h_dim: int = 400, objective: str = "jmvae", alpha: float = 1.0,
          label_weight: float = 50.0):
    """The experts, decoders, prior, the three products of experts, and the loss."""
    q_x, q_y = Expert("x", X_DIM, z_dim, h_dim), Expert("y", N_CLASSES, z_dim, 64)
    p_x, p_y = ImageDecoder(z_dim, h_dim), LabelDecoder(z_dim, 64)
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[z_dim], name="p_{prior}")
    q = ProductOfNormal([q_x, q_y], name="q")     # q(z|x,y)
    q_xo = ProductOfNormal([q_x], name="q")       # q(z|x)
    q_yo = ProductOfNormal([q_y], name="q")       # q(z|y)
    log_px, log_py = LogProb(p_x), label_weight * LogProb(p_y)
    joint = KullbackLeibler(q, prior) - E(q, log_px + log_py)
    if objective == "jmvae":
        loss = joint + alpha * KullbackLeibler(q, q_xo) + alpha * KullbackLeibler(q, q_yo)
    elif objective == "mvae":
        loss = (joint + KullbackLeibler(q_xo, prior) - E(q_xo, log_px)
                + KullbackLeibler(q_yo, prior) - E(q_yo, log_py))
    else:
        raise ValueError(f"--objective is jmvae or mvae, got {objective!r}")
    neg_elbo = KullbackLeibler(q, prior) - E(q, LogProb(p_x) + LogProb(p_y))
    return (q, q_xo, q_yo, p_x, p_y, prior), loss.mean(), neg_elbo.mean()


def to_dict(x, y):
    return {"x": x, "y": one_hot(y, N_CLASSES)}


@torch.no_grad()
def accuracy(q_xo, p_y, x, y) -> float:
    """Label predicted from the image alone: :math:`\\arg\\max p(y|z)`, :math:`z` the
    mean of :math:`q(z|x)`."""
    correct = 0
    for xb, yb in iterate_minibatches(x, y, 1000):
        z = q_xo.sample_mean({"x": xb})
        correct += int((p_y.get_params({"z": z})["probs"].argmax(-1) == yb).sum())
    return correct / len(x)


@torch.no_grad()
def save_pictures(q, q_yo, p_x, x_test, y_test, out, seed: int, names) -> None:
    """Reconstructions through q(z|x,y); images from labels alone through q(z|y)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        idx = torch.linspace(0, len(x_test) - 1, min(32, len(x_test))).long()
        given = to_dict(x_test[idx], y_test[idx])
        recon = p_x.sample_mean(q.sample(given, return_all=False))
        save_image_grid(torch.cat([given["x"], recon]).cpu(), out / "reconstructions.png",
                        nrow=16, title="test images (top), reconstructions via q(z|x,y)")
        y = one_hot(torch.arange(N_CLASSES, device=x_test.device).repeat_interleave(10),
                    N_CLASSES)
        z = q_yo.sample({"y": y}, return_all=False)
        save_image_grid(p_x.sample_mean(z).cpu(), out / "samples.png", nrow=10,
                        title="x from the label alone, z ~ q(z|y); rows: "
                        + ", ".join(names[:3]) + ", ...")


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train the multimodal VAE; return the metrics (also in ``<out>/metrics.json``)."""
    ap = example_parser("JMVAE / MVAE with a product-of-experts encoder, images + labels",
                        epochs=EPOCHS)
    ap.add_argument("--z-dim", type=int, default=20)
    ap.add_argument("--h-dim", type=int, default=400)
    ap.add_argument("--objective", choices=["jmvae", "mvae"], default="jmvae")
    ap.add_argument("--alpha", type=float, default=1.0, help="JMVAE-kl's KL weight")
    ap.add_argument("--label-weight", type=float, default=50.0,
                    help="weight of log p(y|z) in the training loss")
    args = parse(ap, argv)
    out = setup(args, "jmvae")
    dataset, x_train, y_train, x_test, y_test = load_data(args)
    dists, loss, neg_elbo = build(args.z_dim, args.h_dim, args.objective, args.alpha,
                                  args.label_weight)
    q, q_xo, q_yo, p_x, p_y, prior = dists
    for d in dists:
        d.to(args.device)
    model = Model(loss, test_loss=neg_elbo, distributions=[q, p_x, p_y],
                  optimizer=torch.optim.Adam, optimizer_params={"lr": args.lr})
    print(model)

    gen = torch.Generator().manual_seed(args.seed)
    logger = Logger(out, args.tensorboard)
    report = epoch_report(logger, lambda: {"accuracy": accuracy(q_xo, p_y, x_test, y_test)},
                          label="loss", unit="(test: joint neg-ELBO, nats/pair)")
    history = fit(model, lambda: iterate_minibatches(x_train, y_train, args.batch_size, True, gen),
                  args.epochs, list(iterate_minibatches(x_test, y_test, 1000)), to_dict=to_dict,
                  test_seed=args.seed + 1, callbacks=[report], **fit_options(args))
    metrics = metrics_of(history)
    save_loss_curve({"train loss": metrics["train"], "test neg-ELBO": metrics["test"]},
                    out / "loss_curve.png", ylabel="nats", title=args.objective.upper())
    save_pictures(q, q_yo, p_x, x_test, y_test, out, args.seed, class_names(dataset))
    metrics.update(dataset=dataset, test_accuracy=metrics["accuracy"][-1])
    logger.save(metrics)
    print(f"test accuracy of y from x {metrics['test_accuracy']:.4f}; wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
