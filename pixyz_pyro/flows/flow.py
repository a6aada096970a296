"""``Flow``: Pixyz's flow API (forward, inverse, logdet_jacobian) over one Pyro transform."""

from typing import Optional, Tuple, Union

import torch
from pyro.distributions.conditional import ConditionalTransform, ConstantConditionalTransform
from pyro.distributions.transforms import IndependentTransform, Transform, identity_transform
from torch import nn

from ._util import check_event_dims, clear_cache, to_batch_shape

AnyTransform = Union[Transform, ConditionalTransform]


class Flow(nn.Module):
    r"""An invertible map :math:`z = f(x)` that records its log-determinant.

    .. math::
        \log p_X(x) = \log p_Z(f(x)) + \log \left| \det \frac{\partial f(x)}{\partial x} \right|

    Every flow in :mod:`pixyz_pyro.flows` is backed by a Pyro transform (see
    :attr:`transform`). :meth:`forward` applies it, :meth:`inverse` applies its inverse, and
    the log-determinant comes from the transform's ``log_abs_det_jacobian``. Subclasses
    implement :meth:`_transform`. A subclass written in Pixyz's style, one that overrides
    ``forward``/``inverse`` and sets ``self._logdet_jacobian`` itself, works too, and its
    :attr:`transform` wraps those methods.

    Shapes follow Pyro: ``x`` is ``batch_shape + features``, where ``features`` has
    :attr:`event_dim` dimensions, and :attr:`logdet_jacobian` has shape ``batch_shape``
    (Pixyz's ``(batch,)``). A flow built without ``event_dim`` learns it from its first input,
    as ``x.dim() - 1``: Pixyz's convention that dim 0 is the batch.

    Parameters
    ----------
    in_features : int or None
        Size of the input (features or channels), as in Pixyz.
    event_dim : int, optional
        Number of feature dimensions; by default learnt from the first input.

    Examples
    --------
    The base class is the identity, as in Pixyz:

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> f = Flow(3)
    >>> z = f(torch.randn(2, 3))
    >>> print(f.logdet_jacobian)
    tensor([0., 0.])
    >>> round(z.sum().item(), 4)
    -2.8459
    """

    def __init__(self, in_features=None, *, event_dim: Optional[int] = None):
        super().__init__()
        self._in_features = in_features
        self._event_dim = event_dim
        self._logdet_jacobian: Optional[torch.Tensor] = None

    @classmethod
    def from_pyro(cls, transform: AnyTransform, in_features=None, *,
                  event_dim: Optional[int] = None) -> "Flow":
        """Any Pyro ``Transform``/``TransformModule``/``ConditionalTransformModule`` as a
        flow; see :class:`~pixyz_pyro.flows.PyroFlow`."""
        from .pyro_flow import PyroFlow

        return PyroFlow(transform, in_features, event_dim=event_dim)

    @property
    def in_features(self):
        return self._in_features

    @property
    def event_dim(self) -> Optional[int]:
        """Number of feature dimensions of the input, or None until the first call."""
        return self._event_dim

    @property
    def logdet_jacobian(self) -> Optional[torch.Tensor]:
        r""":math:`\log|\det \partial z / \partial x|` of the last :meth:`forward`, shape
        ``batch_shape``."""
        return self._logdet_jacobian

    # -- the Pyro side --------------------------------------------------------------------

    def _transform(self, event_dim: int) -> AnyTransform:
        """The Pyro transform behind this flow for inputs with ``event_dim`` feature dims.

        Its ``domain.event_dim`` may be smaller (an elementwise transform); the caller
        reinterprets the extra dims as features. The base flow is the identity.
        """
        return identity_transform

    def _is_pixyz_style(self) -> bool:
        cls = type(self)
        return cls.forward is not Flow.forward and cls._transform is Flow._transform

    def _known_event_dim(self) -> int:
        if self.event_dim is None:
            raise RuntimeError(
                f"{self._get_name()} learns its event_dim (the number of feature dims) from "
                "its first input: call it once, or pass event_dim= when you build it"
            )
        return self.event_dim

    @property
    def transform(self) -> AnyTransform:
        """This flow as a Pyro transform ``x -> z`` whose ``domain.event_dim`` is
        :attr:`event_dim`, ready for ``pyro.distributions.TransformedDistribution``.

        The parameters belong to the flow: register the flow (an ``nn.Module``), not this
        object. A conditional flow gives a transform that also has ``.condition(y)``.
        Like every Pyro transform with ``cache_size=1``, it answers a repeated call on the same
        tensor object from its cache: call ``clear_cache()`` on the distribution after each
        step, as Pyro's flow tutorials do. :meth:`forward` and :meth:`inverse` clear it first.
        """
        event_dim = self._known_event_dim()
        if self._is_pixyz_style():
            from .transforms.flow_transform import FlowTransform

            return FlowTransform(self, event_dim)
        t = self._transform(event_dim)
        return reinterpret(t, event_dim) if isinstance(t, Transform) else t

    @property
    def conditional_transform(self) -> ConditionalTransform:
        """This flow as a Pyro ``ConditionalTransform``, for
        ``pyro.distributions.ConditionalTransformedDistribution``."""
        t = self.transform
        if not isinstance(t, ConditionalTransform):
            return ConstantConditionalTransform(t)
        if isinstance(t, Transform):
            from .transforms.conditional_view import ConditionalView

            return ConditionalView(t)
        return t

    def condition(self, y: Optional[torch.Tensor] = None) -> AnyTransform:
        """This flow as a Pyro transform with its conditioning variable fixed to ``y``."""
        t = self.transform
        if isinstance(t, ConditionalTransform) and y is not None:
            return t.condition(y)
        return t

    def _bind(self, event_dim: int, y: Optional[torch.Tensor]) -> Transform:
        t = self._transform(event_dim)
        if isinstance(t, ConditionalTransform) and (y is not None or not isinstance(t, Transform)):
            if y is None:
                raise ValueError(f"{self._get_name()} is conditional: call it with y=...")
            t = t.condition(y)
        return reinterpret(t, event_dim)

    def _event_dim_of(self, x: torch.Tensor) -> int:
        if self.event_dim is not None:
            return self.event_dim
        if x.dim() < 2:
            raise ValueError(
                f"{self._get_name()} learns its event_dim from its first input, which needs "
                f"a batch dim in front of the features; got shape {tuple(x.shape)}"
            )
        return x.dim() - 1

    # -- Pixyz's API -----------------------------------------------------------------------

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                compute_jacobian: bool = True) -> torch.Tensor:
        r"""Apply the flow, :math:`z = f(x)`.

        Parameters
        ----------
        x : torch.Tensor
            Input, shape ``batch_shape + features``.
        y : torch.Tensor, optional
            Conditioning variable; flows that are not conditional ignore it.
        compute_jacobian : bool
            Whether to store :math:`\log|\det J|` in :attr:`logdet_jacobian`.
        """
        event_dim = self._event_dim_of(x)
        check_event_dims(self._get_name(), x, event_dim)
        t = self._bind(event_dim, y)
        clear_cache(t)
        z = t(x)
        if compute_jacobian:
            logdet = t.log_abs_det_jacobian(x, z)
            self._logdet_jacobian = to_batch_shape(logdet, x, event_dim)
        self._event_dim = event_dim
        return z

    def inverse(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Invert the flow, :math:`x = f^{-1}(z)`; no log-determinant is computed."""
        event_dim = self._event_dim_of(z)
        t = self._bind(event_dim, y)
        check_event_dims(self._get_name(), z, t.codomain.event_dim)
        clear_cache(t)
        return t.inv(z)

    #: Whether :meth:`inverse_and_logdet` may take the log-determinant from the inverse
    #: pass.  ``False`` where the forward pass has effects the density must keep (the
    #: running statistics of batch normalisation).
    _logdet_from_inverse = True

    def inverse_and_logdet(self, z: torch.Tensor, y: Optional[torch.Tensor] = None
                           ) -> Tuple[torch.Tensor, torch.Tensor]:
        r""":math:`x = f^{-1}(z)` and :math:`\log|\det \partial f(x) / \partial x|`, shape
        ``batch_shape``: what a density under the flow needs,

        .. math::
            \log p_Z(z) = \log p_X(f^{-1}(z)) - \log|\det \partial f(x) / \partial x|.

        The transform is inverted once and asked for its log-determinant at the pair
        :math:`(x, z)` it has just cached, as Pyro's ``TransformedDistribution.log_prob``
        does, so a coupling layer runs its network once.  A flow written in Pixyz's style
        (its own ``forward``/``inverse``) is inverted and then run forward.  Also sets
        :attr:`logdet_jacobian`.

        Examples
        --------
        >>> from pixyz_pyro.flows import AffineCoupling
        >>> _ = torch.manual_seed(0)
        >>> net, calls = torch.nn.Linear(4, 8), []
        >>> def scale_translate(x):
        ...     calls.append(x)
        ...     return net(x).chunk(2, dim=-1)
        >>> f = AffineCoupling(4, scale_translate_net=scale_translate)
        >>> z = torch.randn(3, 4)
        >>> x, logdet = f.inverse_and_logdet(z)
        >>> len(calls)  # one pass of the network
        1
        >>> bool(torch.allclose(f(x), z, atol=1e-6))
        True
        >>> bool(torch.allclose(f.logdet_jacobian, logdet, atol=1e-6))
        True
        """
        cls = type(self)
        if not (self._logdet_from_inverse and cls.forward is Flow.forward
                and cls.inverse is Flow.inverse):
            x = self.inverse(z, y)
            self.forward(x, y, compute_jacobian=True)
            logdet = self.logdet_jacobian
            assert logdet is not None  # forward(compute_jacobian=True) sets it
            return x, logdet
        event_dim = self._event_dim_of(z)
        t = self._bind(event_dim, y)
        check_event_dims(self._get_name(), z, t.codomain.event_dim)
        clear_cache(t)
        x = t.inv(z)
        logdet = to_batch_shape(t.log_abs_det_jacobian(x, z), x, event_dim)
        self._logdet_jacobian = logdet
        self._event_dim = event_dim
        return x, logdet


def reinterpret(t: Transform, event_dim: int) -> Transform:
    """Make ``t``'s domain have ``event_dim`` dims, summing its log-det over the extra ones."""
    extra = event_dim - t.domain.event_dim
    if extra < 0:
        raise ValueError(
            f"{type(t).__name__} acts on {t.domain.event_dim} feature dims, more than the "
            f"flow's event_dim={event_dim}"
        )
    return _Reinterpreted(t, extra, cache_size=t._cache_size) if extra else t


class _Reinterpreted(IndependentTransform):
    """``IndependentTransform`` whose ``clear_cache`` also clears the transforms inside."""

    def clear_cache(self):
        clear_cache(self)
