"""The programs ``run_pixyz_programs.py`` runs, and what is changed in each.

Each patch is ``(regular expression, replacement)`` over the program's code (multiline
mode); a patch must match, unless its pattern starts with ``(?#optional)``.  Patches only
shorten runs (epochs, steps, sizes) or replace what needs the network or a GPU; none
changes how a program uses Pixyz.
"""
import pickle
from pathlib import Path
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

Patch = Tuple[str, str]

#: Applied to every program: one epoch; Python 3's ``next(it)`` for the Python 2
#: ``it.next()`` that DataLoader iterators no longer have.
GENERIC: Sequence[Patch] = (
    (r"(?#optional)iter\(([\w.\[\]']+)\)\.next\(\)", r"next(iter(\1))"),
    (r"(?#optional)^(\s*)(epochs|num_epochs|n_epochs|epoch_num|num_epoch|EPOCHS|max_epoch"
     r"|epoch|n_epoch|nb_epochs|train_epochs)(\s*=\s*)\d[\d_]*\s*(#.*)?$", r"\1\2\g<3>1"),
)


class Program(NamedTuple):
    name: str
    repo: str
    path: str
    patches: Sequence[Patch] = ()
    argv: Sequence[str] = ()
    #: Patches of the modules beside the program, by file name.
    module_patches: Dict[str, Sequence[Patch]] = {}
    #: Writes the data files the program reads into its folder (offline stand-ins).
    data: Optional[Callable[[Path], None]] = None
    #: Size of the stand-in training sets (``offline``'s default where ``None``).
    train_size: Optional[int] = None


def cartpole(folder: Path, episodes: int = 256, steps: int = 30) -> None:
    """``cartpole_28.pickle`` as Pixyz's DMM tutorial reads it: frames (N, T, 28, 28, 3)
    in 0..255 and actions (N, T) in {0, 1}."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (episodes, steps, 28, 28, 3), dtype=np.uint8)
    actions = rng.integers(0, 2, (episodes, steps))
    with open(folder / "cartpole_28.pickle", "wb") as f:
        pickle.dump((frames, actions), f)


PIXYZ = "masa-su/pixyz"
ZOO = "masa-su/pixyzoo"
PRACTICE = "HironoOkamoto/practice_pixyz"

_TUTORIALS = ["00-PixyzOverview", "01-DistributionAPITutorial", "02-LossAPITutorial",
              "03-ModelAPITutorial", "04-DeepMarkovModel"]
_EXAMPLES = ["cvae", "distributions", "gan", "glow", "gmm", "hierarchical_variational_inference",
             "jmvae", "jmvae_poe", "m2", "maximum_likelihood", "mmd_vae", "mvae",
             "normalizing_flow_toy", "real_nvp", "real_nvp_cifar", "real_nvp_cond",
             "real_nvp_toy", "vae", "vae_with_vae_class", "vi"]

#: Program-specific patches, by program name.
PATCHES: Dict[str, Sequence[Patch]] = {
    # networkx's write_dot needs pydot or pygraphviz, dot2tex a TeX install: drawing only.
    "pixyz/examples/distributions": (
        (r"^(\s*)write_dot\(", r"\1(lambda graph, path: open(path, 'w').close())("),
        (r"d2t\.dot2tex\(", "(lambda *a, **k: '')("),
        (r"subprocess\.run\(\['pdflatex', tex_path\]\)", "open(pdf_path, 'wb').close()")),
}


def dsprites(folder: Path, n: int = 1128) -> None:
    """The dSprites archive (``imgs``: N x 64 x 64 in {0, 1})."""
    rng = np.random.default_rng(0)
    (folder / "data" / "dsprites-dataset").mkdir(parents=True)
    (folder / "logs").mkdir()
    np.savez(folder / "data" / "dsprites-dataset" /
             "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
             imgs=rng.integers(0, 2, (n, 64, 64), dtype=np.uint8))


def mnist_processed(folder: Path) -> None:
    """``data/MNIST/processed/{training,test}.pt`` as torchvision's old MNIST wrote them."""
    import torch
    g = torch.Generator().manual_seed(0)
    out = folder / "data" / "MNIST" / "processed"
    out.mkdir(parents=True)
    for name, n in (("training.pt", 256), ("test.pt", 64)):
        torch.save((torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8),
                    torch.randint(0, 10, (n,), generator=g)), out / name)


def td_vae(folder: Path) -> None:
    """TD-VAE's MNIST files and its log folder."""
    mnist_processed(folder)
    (folder / "log").mkdir()


_ONE = r"\g<1>1"  # a loop bound cut to one
_DSPRITES = ((r"\.\./data/dsprites", "data/dsprites"),)
_PUSH_LOADER = '''import math
import torch


class PushDataLoader:
    """Stand-in for the BAIR pushing loader: (B, 3, 64, 64) frames in [0, 1]."""

    def __init__(self, path, split, B, epochs, N=2 * 64):
        self.B, self.N = B, N
        self.L = math.ceil(N / B)
        self.i = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.i += 1
        if self.i > self.L:
            raise StopIteration
        return torch.rand(self.B, 3, 64, 64)

    def __len__(self):
        return self.L
'''

def gqn_scenes(folder: Path, scenes: int = 4, views: int = 15) -> None:
    """Shepard-Metzler scenes as GQN's converter writes them: ``train/0.pt``... each a
    ``Scene(frames=[PNG bytes] * views, cameras=float32 (views, 5))``, and ``logs/``."""
    import collections
    import io
    import sys
    import types

    import torch
    from PIL import Image
    scene = collections.namedtuple("Scene", ["frames", "cameras"])
    scene.__module__ = "gqn_dataset"  # what the program unpickles
    rng = np.random.default_rng(0)
    saved = sys.modules.get("gqn_dataset")
    sys.modules["gqn_dataset"] = types.SimpleNamespace(Scene=scene)
    try:
        for split in ("train", "test"):
            (folder / split).mkdir()
            for i in range(scenes):
                frames = []
                for _ in range(views):
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
                        buf, format="PNG")
                    frames.append(buf.getvalue())
                cameras = rng.standard_normal((views, 5)).astype(np.float32)
                torch.save(scene(frames, cameras), folder / split / f"{i}.pt")
    finally:
        if saved is None:
            del sys.modules["gqn_dataset"]
        else:
            sys.modules["gqn_dataset"] = saved
    (folder / "logs").mkdir()


_ZOO = [Program("pixyzoo/DMM", ZOO, "DMM/dmm.ipynb"),
        Program("pixyzoo/VRNN", ZOO, "VRNN/vrnn.ipynb"),
        # Dirichlet(relu(...)) meets a zero: torch < 1.8 did not validate by default.
        Program("pixyzoo/DynaNet", ZOO, "DynaNet/dynanet.ipynb",
                ((r"^(from torch.distributions.dirichlet import Dirichlet)$",
                  r"\1\ntorch.distributions.Distribution.set_default_validate_args(False)"),)),
        Program("pixyzoo/FactorVAE", ZOO, "FactorVAE/factorvae.ipynb"),
        Program("pixyzoo/FactorVAE-baseline", ZOO, "FactorVAE/factorvae-baseline.ipynb"),
        Program("pixyzoo/VIB", ZOO, "VIB/vib.ipynb"),
        Program("pixyzoo/VIB-baseline", ZOO, "VIB/baseline.ipynb"),
        Program("pixyzoo/TD-VAE", ZOO, "TD-VAE/train.ipynb",
                ((r"gradient_steps=2\*10\*\*4", "gradient_steps=3"),
                 (r"data_dir='\.\./data/MNIST/'", "data_dir='data/MNIST/'")),
                data=td_vae),
        # torch >= 2.6 loads weights only by default; the scenes are pickled namedtuples
        Program("pixyzoo/GQN", ZOO, "GQN/train.py",
                argv=("--batch_size", "2", "--gradient_steps", "2", "--layers", "2",
                      "--train_data_dir", "train", "--test_data_dir", "test",
                      "--root_log_dir", "logs", "--log_interval", "1"),
                module_patches={"gqn_dataset.py": (
                    (r"torch\.load\(scene_path\)", "torch.load(scene_path, weights_only=False)"),
                )},
                data=gqn_scenes)]

def mnist_a(folder: Path, sizes=(("train", 256), ("valid", 128), ("test", 400))) -> None:
    """MNIST-A as ``create_mnist_A.py -nl 1,2 -pxl 0,36 -pyl 0 -al 0 -sl 28`` writes it:
    ``data/MNIST_A/{split}_X/{n}.png`` (64 x 64 grey, n from 1) and ``{split}_y.npy``
    rows ``[scale, sin, cos, pos_x, pos_y, digit]``; and the ``logs`` folder."""
    from PIL import Image
    rng = np.random.default_rng(0)
    root = folder / "data" / "MNIST_A"
    for split, n in sizes:
        (root / f"{split}_X").mkdir(parents=True)
        labels = []
        for i in range(n):
            pos_x, digit = int(rng.choice([0, 36])), int(rng.choice([1, 2]))
            image = np.zeros((64, 64), dtype=np.uint8)
            image[:28, pos_x:pos_x + 28] = rng.integers(0, 256, (28, 28), dtype=np.uint8)
            Image.fromarray(image).save(root / f"{split}_X" / f"{i + 1}.png")
            labels.append([28, 0.0, 1.0, pos_x, 0, digit])
        np.save(root / f"{split}_y.npy", np.array(labels))
    (folder / "logs").mkdir()


def mnist_a_classifier(folder: Path) -> None:
    """MNIST-A and, in place of the classifier that ``mnist_A_classifier.ipynb`` trains,
    an untrained one of the same shapes (``logs/MNIST_A_classifier.pkl``)."""
    import torch
    from torch import nn
    mnist_a(folder)
    torch.manual_seed(0)
    conv = [nn.Conv2d(1, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2)]
    fc = [nn.Linear(128 * 8 * 8, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),
          nn.Linear(1024, 2)]
    classifier = nn.Module()
    classifier.conv_e, classifier.fc_e = nn.Sequential(*conv), nn.Sequential(*fc)
    torch.save(classifier.state_dict(), folder / "logs" / "MNIST_A_classifier.pkl")


_MNIST_A = ((r"\.\./data/MNIST_A/", "data/MNIST_A/"),)

_PRACTICE = [
    Program("practice_pixyz/BetaVAE", PRACTICE, "FactorVAE/BetaVAE.ipynb",
            _DSPRITES + ((r"for beta in \[3, 5, 10, 30, 50, 100\]", "for beta in [50]"),
                         (r"(for i in range\()10(\):)", r"\g<1>1\2")), data=dsprites),
    Program("practice_pixyz/CCI-VAE", PRACTICE, "FactorVAE/CCI-VAE.ipynb",
            # the notebook loads the model of gamma 80, which its loop does not train
            _DSPRITES + ((r"for gamma in \[30, 50, 70, 100, 120, 140\]",
                          "for gamma in [80]"),), data=dsprites),
    Program("practice_pixyz/FactorVAE", PRACTICE, "FactorVAE/FactorVAE.ipynb",
            _DSPRITES + ((r"for gamma in \[10, 20\]", "for gamma in [10]"),
                         (r"(for i in range\()10(\):)", r"\g<1>1\2")), data=dsprites),
    # torchvision < 0.3 normalised only the channels there are; today's raises on MNIST
    Program("practice_pixyz/GAN", PRACTICE, "GAN/GAN.ipynb",
            ((r"mean=\(0\.5, 0\.5, 0\.5\), std=\(0\.5, 0\.5, 0\.5\)",
              "mean=(0.5,), std=(0.5,)"),)),
    # M1 and M2 take their labelled examples from index 4200 on: a longer training set.
    Program("practice_pixyz/M1", PRACTICE, "M2/M1.ipynb",
            ((r"(for epoch in range\()100(\):)", r"\g<1>1\2"),), train_size=4400),
    Program("practice_pixyz/M2", PRACTICE, "M2/M2.ipynb",
            ((r"(for epoch in (?:tqdm\()?range\()\d+(\))", r"\g<1>1\2"),), train_size=4400),
    # M1+M2 saves figures into the folder that M1.ipynb makes
    Program("practice_pixyz/M1+M2", PRACTICE, "M2/M1+M2.ipynb",
            ((r"(for epoch in range\()100(\):)", r"\g<1>1\2"),), train_size=4400,
            data=lambda folder: (folder / "logs" / "mnist_gif_m1").mkdir(parents=True)),
    # MNIST-A is generated offline (create_mnist_A.py downloads MNIST); the classifier
    # that the CVAE notebook loads is an untrained stand-in of the same shapes
    Program("practice_pixyz/JMVAE", PRACTICE, "JMVAE/JMVAE_MNIST_A_experiment.ipynb",
            _MNIST_A + ((r"(for i in range\()15(\):)", r"\g<1>1\2"),), data=mnist_a),
    Program("practice_pixyz/CVAE-MNIST-A", PRACTICE, "JMVAE/CVAE_MNIST_A_experiment.ipynb",
            _MNIST_A + ((r"(for i in range\()5(\):)", r"\g<1>1\2"),),
            data=mnist_a_classifier),
]

_OTHERS = [
    Program("medium-pyro-pixyz/pixyz_vae", "hei4/medium-pyro-pixyz", "pixyz_vae.py",
            ((r"epochs = 2 if smoke_test == True else 50", "epochs = 1"),
             (r"assert pixyz\.__version__\.startswith\('0\.2\.0'\)", "pass"))),
    Program("ssm-pixyz/VAE", "naruya/ssm-pixyz", "VAE/main.py",
            ((r'device = "cuda"', 'device = "cpu"'),
             (r'log_dir = "\.\./runs/"', 'log_dir = "runs/"')),
            argv=("--epochs", "1", "--B", "64"),
            module_patches={"data_loader.py": ((r"(?s)\A.*\Z", _PUSH_LOADER),)},
            data=lambda folder: [(folder / "logs" / d).mkdir(parents=True)
                                 for d in ("p", "q", "opt")]),
]

PROGRAMS = (
    [Program(f"pixyz/tutorial/{t}", PIXYZ, f"tutorial/English/{t}.ipynb",
             PATCHES.get(f"pixyz/tutorial/{t}", ()),
             data=cartpole if t.startswith("04") else None) for t in _TUTORIALS]
    + [Program(f"pixyz/examples/{e}", PIXYZ, f"examples/{e}.ipynb",
               PATCHES.get(f"pixyz/examples/{e}", ())) for e in _EXAMPLES]
    + _ZOO + _PRACTICE + _OTHERS
)
