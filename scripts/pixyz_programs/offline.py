"""What a program runs against in ``run_pixyz_programs.py``: Pixyz's imports served by
pixyz_pyro, and offline stand-ins for the data sets and the tools a notebook needs.

* :class:`PixyzAlias`: ``import pixyz.X.Y`` gives ``pixyz_pyro.X.Y``, or its nearest
  parent that pixyz_pyro has (``pixyz.distributions.distributions`` gives
  ``pixyz_pyro.distributions``, which is ``pixyz_pyro.dist``).  Only the imports change.
* :func:`fake_torchvision`: a ``torchvision`` module whose data sets are small, made from a
  seeded generator, of the real shapes (MNIST 1x28x28, CIFAR-10 3x32x32), with the
  transforms the programs use.  Used only where torchvision is not installed: its data
  downloads fail offline anyway.
* :func:`fake_module`: a module whose every attribute is a do-nothing callable
  (``tensorboardX.SummaryWriter``, ``IPython.display``), for tools that only log or draw.
"""
import importlib
import importlib.abc
import importlib.machinery
import sys
import types

import numpy as np
import torch

#: Pixyz's top-level modules and the pixyz_pyro modules that serve them.
ALIASES = {"pixyz": "pixyz_pyro", "pixyz.distributions": "pixyz_pyro.distributions",
           "pixyz.losses": "pixyz_pyro.losses", "pixyz.models": "pixyz_pyro.models",
           "pixyz.flows": "pixyz_pyro.flows", "pixyz.layers": "pixyz_pyro.layers",
           "pixyz.utils": "pixyz_pyro.utils"}


def _target(name: str) -> str:
    """The pixyz_pyro module that serves ``name``: its own, or its nearest parent's."""
    parts = name.split(".")
    while parts:
        head = ".".join(parts)
        if head in ALIASES:
            return ALIASES[head] + name[len(head):]
        parts.pop()
    raise ImportError(name)


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        name = self.target
        while True:
            try:
                return importlib.import_module(name)
            except ModuleNotFoundError:
                if "." not in name:
                    raise
                name = name.rsplit(".", 1)[0]

    def exec_module(self, module):
        pass


class PixyzAlias(importlib.abc.MetaPathFinder):
    """Serve ``pixyz`` and its submodules from pixyz_pyro (see the module docstring)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "pixyz" and not fullname.startswith("pixyz."):
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(_target(fullname)),
                                              is_package=True)


def fake_module(name: str) -> types.ModuleType:
    """A module whose attributes are do-nothing callables returning a do-nothing object."""
    class _Nothing:
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, *args, **kwargs):
            return _Nothing()

        def __getattr__(self, item):
            return _Nothing()

    class _Module(types.ModuleType):
        version_info = (99, 0, 0)  # matplotlib reads IPython's

        def get_ipython(self):
            return None

        def __getattr__(self, item):
            if item.startswith("__"):
                raise AttributeError(item)
            return _Nothing

    return _Module(name)


# --- torchvision, offline ---------------------------------------------------------------------
class _Images(torch.utils.data.Dataset):
    """``n`` images of ``shape`` (C, H, W) in [0, 1] and labels in ``range(classes)``,
    the same for every run (a seeded generator), as a torchvision data set."""

    shape = (1, 28, 28)
    classes = 10
    sizes = (256, 256)  # train, test

    def __init__(self, root=None, train=True, transform=None, target_transform=None,
                 download=False, **kwargs):
        import os
        n = int(os.environ.get("PIXYZ_PROGRAM_TRAIN_SIZE", self.sizes[0])) if train \
            else self.sizes[1]
        g = torch.Generator().manual_seed(1 if train else 2)
        self.images = torch.rand((n,) + self.shape, generator=g)
        self.targets = torch.randint(0, self.classes, (n,), generator=g)
        self.transform, self.target_transform = transform, target_transform
        self.train = train

    @property
    def data(self):
        """uint8 images as torchvision keeps them (N, H, W) or (N, H, W, C)."""
        u8 = (self.images * 255).to(torch.uint8)
        return u8[:, 0] if self.shape[0] == 1 else u8.permute(0, 2, 3, 1).numpy()

    train_data = test_data = data

    @property
    def train_labels(self):
        return self.targets

    test_labels = train_labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x, y = _picture(self.images[i]), int(self.targets[i])
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y


def _picture(t: torch.Tensor):
    """A (C, H, W) tensor in [0, 1] as the PIL image a torchvision data set hands out."""
    from PIL import Image
    u8 = (t * 255).to(torch.uint8)
    if u8.shape[0] == 1:
        return Image.fromarray(u8[0].numpy(), mode="L")
    return Image.fromarray(u8.permute(1, 2, 0).numpy(), mode="RGB")


def _as_tensor(x):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.array(x))  # a copy: PIL arrays are read-only
        t = t.permute(2, 0, 1) if t.dim() == 3 else t.unsqueeze(0)
        return t.float() / 255 if t.dtype == torch.uint8 else t.float()
    if hasattr(x, "mode") and hasattr(x, "size"):  # a PIL image
        return _as_tensor(np.asarray(x))
    return x


def fake_torchvision() -> types.ModuleType:
    """The ``torchvision`` stand-in (see the module docstring)."""
    tv = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    transforms = types.ModuleType("torchvision.transforms")
    utils = types.ModuleType("torchvision.utils")

    def dataset(name, shape, classes=10, sizes=(256, 256)):
        return type(name, (_Images,), {"shape": shape, "classes": classes, "sizes": sizes})

    datasets.MNIST = dataset("MNIST", (1, 28, 28))
    datasets.FashionMNIST = dataset("FashionMNIST", (1, 28, 28))
    datasets.KMNIST = dataset("KMNIST", (1, 28, 28))
    datasets.CIFAR10 = dataset("CIFAR10", (3, 32, 32), sizes=(64, 32))
    datasets.SVHN = dataset("SVHN", (3, 32, 32))
    datasets.CelebA = dataset("CelebA", (3, 64, 64))

    class ImageFolder(torch.utils.data.Dataset):
        """The images under ``root/<class>/``, as RGB, labelled by folder (sorted)."""

        def __init__(self, root, transform=None, target_transform=None, **kwargs):
            import os
            self.classes = sorted(d for d in os.listdir(root)
                                  if os.path.isdir(os.path.join(root, d)))
            self.samples = [(os.path.join(root, c, f), k) for k, c in enumerate(self.classes)
                            for f in sorted(os.listdir(os.path.join(root, c)))]
            self.targets = [k for _, k in self.samples]
            self.transform, self.target_transform = transform, target_transform

        def __len__(self):
            return len(self.samples)

        def __getitem__(self, i):
            from PIL import Image
            path, y = self.samples[i]
            x = Image.open(path).convert("RGB")
            if self.transform is not None:
                x = self.transform(x)
            if self.target_transform is not None:
                y = self.target_transform(y)
            return x, y

    datasets.ImageFolder = ImageFolder

    class Compose:
        def __init__(self, steps):
            self.steps = list(steps)

        def __call__(self, x):
            for s in self.steps:
                x = s(x)
            return x

    class ToTensor:
        def __call__(self, x):
            return _as_tensor(x)

    class Lambda:
        def __init__(self, lambd):
            self.lambd = lambd

        def __call__(self, x):
            return self.lambd(_as_tensor(x))

    class Normalize:
        def __init__(self, mean, std, inplace=False):
            self.mean, self.std = torch.as_tensor(mean), torch.as_tensor(std)

        def __call__(self, x):
            return (x - self.mean.reshape(-1, 1, 1)) / self.std.reshape(-1, 1, 1)

    class Identity:
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, x):
            return x

    class Resize:
        def __init__(self, size, *args, **kwargs):
            self.size = (size, size) if isinstance(size, int) else tuple(size)

        def __call__(self, x):
            t = _as_tensor(x)
            return torch.nn.functional.interpolate(t[None], size=self.size)[0]

    for name, cls in [("Compose", Compose), ("ToTensor", ToTensor), ("Lambda", Lambda),
                      ("Normalize", Normalize), ("Resize", Resize),
                      ("RandomHorizontalFlip", Identity), ("ToPILImage", Identity),
                      ("Grayscale", Identity), ("CenterCrop", Identity)]:
        setattr(transforms, name, cls)

    def make_grid(tensor, nrow=8, padding=2, **kwargs):
        t = torch.as_tensor(tensor) if not isinstance(tensor, list) else torch.stack(tensor)
        if t.dim() == 3:
            t = t.unsqueeze(1)
        if t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        return torch.cat(list(t), dim=-1)

    utils.make_grid = make_grid
    utils.save_image = lambda *args, **kwargs: None
    tv.datasets, tv.transforms, tv.utils = datasets, transforms, utils
    tv.__version__ = "0.0-offline"
    return tv


def install(torchvision: bool) -> None:
    """Install the alias and the stand-ins in ``sys.modules`` (see the module docstring)."""
    sys.meta_path.insert(0, PixyzAlias())
    if torchvision:
        tv = fake_torchvision()
        sys.modules.update({"torchvision": tv, "torchvision.datasets": tv.datasets,
                            "torchvision.transforms": tv.transforms,
                            "torchvision.utils": tv.utils})
    for name in ("tensorboardX", "IPython", "IPython.display", "seaborn", "imageio",
                 "dot2tex", "umap", "six", "six.moves"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = fake_module(name)
