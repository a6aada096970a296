"""``pixyz_pyro.distributions``: Pixyz's package name for :mod:`pixyz_pyro.dist`.

Code written for Pixyz with its imports renamed (``from pixyz_pyro import distributions``)
finds the same module: after ``import pixyz_pyro.distributions``, ``pixyz_pyro.distributions is
pixyz_pyro.dist``.

>>> import pixyz_pyro.distributions, pixyz_pyro.dist
>>> pixyz_pyro.distributions is pixyz_pyro.dist
True
"""
import sys

from . import dist as _target

sys.modules[__name__] = _target
