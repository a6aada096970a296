"""``pixyz_pyro.models``: Pixyz's package name for :mod:`pixyz_pyro.model`.

Code written for Pixyz with its imports renamed (``from pixyz_pyro import models``)
finds the same module: after ``import pixyz_pyro.models``, ``pixyz_pyro.models is
pixyz_pyro.model``.

>>> import pixyz_pyro.models, pixyz_pyro.model
>>> pixyz_pyro.models is pixyz_pyro.model
True
"""
import sys

from . import model as _target

sys.modules[__name__] = _target
