"""``pixyz_pyro.losses``: Pixyz's package name for :mod:`pixyz_pyro.loss`.

Code written for Pixyz with its imports renamed (``from pixyz_pyro import losses``)
finds the same module: after ``import pixyz_pyro.losses``, ``pixyz_pyro.losses is
pixyz_pyro.loss``.

>>> import pixyz_pyro.losses, pixyz_pyro.loss
>>> pixyz_pyro.losses is pixyz_pyro.loss
True
"""
import sys

from . import loss as _target

sys.modules[__name__] = _target
