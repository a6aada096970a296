"""Semi-supervised learning with Kingma et al.'s M2 model, 100 labels per class.

Generative model and inference model (Kingma, Rezende, Mohamed & Welling 2014):

.. math::

    p(x, z | y) = p(x|z, y) p_{prior}(z), \\qquad q(z, y|x) = q(z|x, y) q(y|x)

with ``q(y|x)`` a ``RelaxedCategorical`` classifier (reparameterised, relaxed one-hot draws
for the unlabelled images; the hard categorical scores the labels). The objective is the
Pixyz paper's (its figure 3): a labelled ELBO, an unlabelled ELBO in which the label is
latent (variables renamed ``x_u``, ``y_u`` with ``replace_var``), and the classifier's
negative log-likelihood weighted by :math:`\\alpha`:

.. math::

    \\mathcal{L} = -\\mathrm{mean}\\,\\mathrm{ELBO}_{q(z, y_u|x_u)}(x_u)
    - \\mathrm{mean}\\,\\mathrm{ELBO}_{q(z|x, y)}(x, y)
    + \\alpha \\, \\mathrm{mean}(-\\log q(y|x))

Each step takes a batch of labelled images (from the 1,000 labelled ones, cycled) and a
batch of unlabelled ones (the rest of the training set). The test metric is the
classifier's accuracy. Pixels are grey levels in ``[0, 1]`` scored by a ``Bernoulli``
(Pixyz's semantics: the binary cross-entropy).

Run from the repository root::

    python -m examples.m2                  # 10 epochs
"""
from typing import Dict, Iterator, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from examples.common import Logger, example_parser, parse, setup
from examples.data import class_names, iterate_minibatches
from examples.nets import X_DIM, epoch_report, fit_options, load_data, metrics_of, mlp, one_hot
from examples.plotting import save_image_grid, save_loss_curve
from pixyz_pyro.dist import Bernoulli, Normal, RelaxedCategorical
from pixyz_pyro.loss import ELBO, LogProb
from pixyz_pyro.model import Model, fit

EPOCHS = 10
N_CLASSES = 10


class Inference(Normal):
    """:math:`q(z|x, y)`."""

    def __init__(self, z_dim: int, h_dim: int):
        super().__init__(var=["z"], cond_var=["x", "y"], name="q")
        self.hidden = mlp([X_DIM + N_CLASSES, h_dim], last=nn.ReLU())
        self.fc_loc = nn.Linear(h_dim, z_dim)
        self.fc_scale = nn.Linear(h_dim, z_dim)

    def forward(self, x, y):
        h = self.hidden(torch.cat([x, y], -1))
        return {"loc": self.fc_loc(h), "scale": F.softplus(self.fc_scale(h))}


class Generator(Bernoulli):
    """:math:`p(x|z, y)`."""

    def __init__(self, z_dim: int, h_dim: int):
        super().__init__(var=["x"], cond_var=["z", "y"], name="p")
        self.net = mlp([z_dim + N_CLASSES, h_dim, X_DIM], last=nn.Sigmoid())

    def forward(self, z, y):
        return {"probs": self.net(torch.cat([z, y], -1))}


class Classifier(RelaxedCategorical):
    """:math:`q(y|x)`: softmax probabilities over the 10 classes."""

    def __init__(self, h_dim: int):
        super().__init__(var=["y"], cond_var=["x"], name="q")
        self.net = mlp([X_DIM, h_dim, h_dim, N_CLASSES])

    def forward(self, x):
        return {"probs": F.softmax(self.net(x), -1)}


def build(z_dim: int = 32, h_dim: int = 500, alpha: float = 60.0):
    """The distributions and the M2 loss (labelled + unlabelled ELBO + alpha * NLL)."""
    q, p, f = Inference(z_dim, h_dim), Generator(z_dim, h_dim), Classifier(h_dim)
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[z_dim], name="p_{prior}")
    p_joint = p * prior                                   # p(x, z | y)
    p_u = p_joint.replace_var(x="x_u", y="y_u")           # p(x_u, z | y_u)
    q_u = q.replace_var(x="x_u", y="y_u") * f.replace_var(x="x_u", y="y_u")
    elbo_u = ELBO(p_u, q_u)                               # y_u is latent
    elbo = ELBO(p_joint, q)                               # y is observed
    nll = -LogProb(f)
    loss = -elbo_u.mean() - elbo.mean() + alpha * nll.mean()
    return q, p, f, prior, loss, nll


def labelled_subset(y: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of ``per_class`` random images of each class (fewer if a class has fewer)."""
    g = torch.Generator().manual_seed(seed)
    idx = []
    for c in range(N_CLASSES):
        members = (y.cpu() == c).nonzero().flatten()
        idx.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    return torch.cat(idx)


def batches(x_l, y_l, x_u, batch_size: int, gen: torch.Generator) -> Iterator:
    """One epoch over the unlabelled images, each batch with a batch of labelled ones
    (the labelled set is reshuffled whenever it runs out)."""
    labelled = iter(())
    for xb_u in iterate_minibatches(x_u, None, batch_size, True, gen):
        pair = next(labelled, None)
        if pair is None:
            labelled = iterate_minibatches(x_l, y_l, batch_size, True, gen)
            pair = next(labelled)
        yield pair[0], pair[1], xb_u


@torch.no_grad()
def accuracy(f, x, y) -> float:
    """Fraction of ``x`` that the classifier ``q(y|x)`` labels correctly."""
    f.eval()
    correct = sum(int((f.get_params({"x": xb})["probs"].argmax(-1) == yb).sum())
                  for xb, yb in iterate_minibatches(x, y, 1000))
    f.train()
    return correct / len(x)


@torch.no_grad()
def save_reconstructions(q, p, f, x_test, out, seed: int) -> None:
    """Test images and their reconstructions through the predicted label:
    :math:`y = \\arg\\max q(y|x)`, :math:`z \\sim q(z|x, y)`, then the mean of
    :math:`p(x|z, y)`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        idx = torch.linspace(0, len(x_test) - 1, min(32, len(x_test))).long()
        x = x_test[idx]
        y = one_hot(f.get_params({"x": x})["probs"].argmax(-1), N_CLASSES)
        z = q.sample({"x": x, "y": y}, return_all=False)
        recon = p.sample_mean({**z, "y": y})
        save_image_grid(torch.cat([x, recon]).cpu(), out / "reconstructions.png", nrow=16,
                        title="test images (top), reconstructions with the predicted label")


@torch.no_grad()
def save_pictures(p, prior, out, seed: int, names, device) -> None:
    """One row per class, the same ``z`` down each column."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        z = prior.sample(batch_n=10, return_all=False)["z"].repeat(N_CLASSES, 1)
        y = one_hot(torch.arange(N_CLASSES, device=device).repeat_interleave(10), N_CLASSES)
        save_image_grid(p.sample_mean({"z": z, "y": y}).cpu(), out / "samples.png", nrow=10,
                        title="p(x|z,y), one row per class (" + ", ".join(names[:3]) + ", ...)")


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train M2; return the metrics, including the test accuracy per epoch."""
    ap = example_parser("M2 semi-supervised VAE, 100 labels per class", epochs=EPOCHS)
    ap.add_argument("--z-dim", type=int, default=32)
    ap.add_argument("--h-dim", type=int, default=500)
    ap.add_argument("--labels-per-class", type=int, default=100)
    ap.add_argument("--alpha", type=float, default=None,
                    help="classifier weight (default: (unlabelled + labelled) / labelled)")
    args = parse(ap, argv)
    out = setup(args, "m2")
    dataset, x_train, y_train, x_test, y_test = load_data(args)
    per_class = min(args.labels_per_class, len(x_train) // (2 * N_CLASSES))  # tiny --limit
    lab = labelled_subset(y_train, per_class, args.seed).to(x_train.device)
    mask = torch.ones(len(x_train), dtype=torch.bool, device=x_train.device)
    mask[lab] = False
    x_l, y_l, x_u = x_train[lab], y_train[lab], x_train[mask]
    alpha = args.alpha if args.alpha is not None else (len(x_u) + len(x_l)) / len(x_l)
    print(f"{len(x_l)} labelled and {len(x_u)} unlabelled images; alpha = {alpha:.1f}")

    q, p, f, prior, loss, nll = build(args.z_dim, args.h_dim, alpha)
    for d in (q, p, f, prior):
        d.to(args.device)
    model = Model(loss, test_loss=nll.mean(), distributions=[p, q, f],
                  optimizer=torch.optim.Adam, optimizer_params={"lr": args.lr})
    print(model)

    gen = torch.Generator().manual_seed(args.seed)
    logger = Logger(out, args.tensorboard)
    report = epoch_report(logger, lambda: {"accuracy": accuracy(f, x_test, y_test)},
                          label="loss", unit="(test: classifier NLL)")
    history = fit(model, lambda: batches(x_l, y_l, x_u, args.batch_size, gen), args.epochs,
                  [{"x": x_test, "y": one_hot(y_test, N_CLASSES)}],
                  to_dict=lambda x, y, xu: {"x": x, "y": one_hot(y, N_CLASSES), "x_u": xu},
                  callbacks=[report], **fit_options(args))
    metrics = metrics_of(history)
    save_loss_curve({"test accuracy": metrics["accuracy"]}, out / "accuracy.png",
                    ylabel="test accuracy", title=f"M2, {len(x_l)} labels")
    save_loss_curve({"train loss": metrics["train"]}, out / "loss_curve.png",
                    ylabel="loss per labelled+unlabelled pair", title="M2")
    save_pictures(p, prior, out, args.seed, class_names(dataset), x_train.device)
    save_reconstructions(q, p, f, x_test, out, args.seed)
    metrics.update(dataset=dataset, labelled=len(x_l), alpha=alpha,
                   test_accuracy=metrics["accuracy"][-1])
    logger.save(metrics)
    print(f"test accuracy {metrics['test_accuracy']:.4f}; wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
