"""``DistributionBase``: Pixyz's name for the base class of atomic distributions.

In Pixyz, families (``Normal``, ...) derive from ``DistributionBase`` and products from
``Distribution``.  Here every distribution derives from
:class:`~pixyz_pyro.dist.Distribution`; ``DistributionBase`` is that class under Pixyz's
name, so Pixyz code that builds bare nodes (``DistributionBase(var=["x"],
cond_var=["z"])``) or subclasses it runs.  A bare node has no family: it describes
variables and prints, and it cannot be sampled or scored.

Examples
--------
>>> a = DistributionBase(var=["x"], cond_var=["z"])
>>> print((a * DistributionBase(var=["z"], cond_var=["y"])).prob_joint_factorized_and_text)
p(x,z|y) = p(x|z)p(z|y)
"""
from .distribution import Distribution


class DistributionBase(Distribution):
    """An atomic distribution node (see the module docstring).

    Parameters
    ----------
    var : list of str
        The variables it defines.
    cond_var : list of str
        The variables it is conditioned on.
    name : str
        The name in formulas.
    features_shape : sequence of int
        The shape of one draw of one batch element.

    Examples
    --------
    >>> a = DistributionBase(var=["x"], cond_var=["z"])
    >>> a.prob_text, a.input_var
    ('p(x|z)', ['z'])
    """
