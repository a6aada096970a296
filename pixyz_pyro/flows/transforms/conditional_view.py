"""``ConditionalView``: a transform that can also be conditioned, seen only as conditional."""

from pyro.distributions.conditional import ConditionalTransform, ConditionalTransformModule


class ConditionalView(ConditionalTransformModule):
    r"""Show only the conditional side of a transform that is also usable unconditionally.

    .. math::
        \mathrm{view.condition}(y) = T.\mathrm{condition}(y)

    A :class:`~pixyz_pyro.flows.transforms.MaskedAffineCoupling` is both a ``Transform`` and
    a ``ConditionalTransform``. Its ``.inv`` is the unconditional inverse, so for
    ``ConditionalTransformedDistribution(base, [t.inv])`` wrap it first: the view's ``.inv``
    conditions, then inverts.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.flows.transforms import MaskedAffineCoupling
    >>> _ = torch.manual_seed(0)
    >>> t = MaskedAffineCoupling(scale_translate_net=lambda x, y: (x.flip(-1) * y, y))
    >>> y, z = torch.randn(2, 1, 2)
    >>> x = ConditionalView(t).inv.condition(y)(z)
    >>> print(x, torch.allclose(t.condition(y)(x), z))
    tensor([[-2.1788,  0.4548]]) True
    """

    def __init__(self, transform: ConditionalTransform):
        super().__init__()
        self.transform = transform

    def condition(self, context):
        return self.transform.condition(context)
