"""``ActNorm``: Glow's per-channel affine normalisation with data-dependent initialisation."""

import torch
from pyro.distributions import constraints
from pyro.distributions.torch_transform import TransformModule
from torch import nn


class ActNorm(TransformModule):
    r"""Per-channel affine map on ``[..., C, H, W]`` images (Glow's activation normalisation).

    .. math::
        z_{c,h,w} = (x_{c,h,w} + b_c)\, e^{s_c}, \qquad
        \log|\det J| = H W \sum_c s_c

    The first forward call in training mode sets :math:`b` and :math:`s` so that the output
    has zero mean and standard deviation ``scale`` per channel over that batch:
    :math:`b_c = -\mathrm{mean}_c(x)`, :math:`s_c = \log(\mathrm{scale} / (\mathrm{std}_c(x) +
    \epsilon))`. After that both are ordinary parameters. Whether that happened is a buffer,
    so it survives ``state_dict``.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> t = ActNorm(2)
    >>> x = 3 + 2 * torch.randn(4, 2, 3, 3)
    >>> z = t(x)
    >>> round(z.std(unbiased=False).item(), 3)
    1.0
    >>> print(t.log_abs_det_jacobian(x, z))
    tensor([-12.1109, -12.1109, -12.1109, -12.1109], grad_fn=<ExpandBackward0>)
    """

    initialized: torch.Tensor  # a buffer

    domain = constraints.independent(constraints.real, 3)
    codomain = constraints.independent(constraints.real, 3)
    bijective = True

    def __init__(self, channels: int, scale: float = 1.0, eps: float = 1e-6):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(channels, 1, 1))
        self.scale = float(scale)
        self.eps = eps
        self.register_buffer("initialized", torch.tensor(False))
        self._seen_initialized = False  # mirrors the buffer without a device sync per call

    def _transaction_restored(self) -> None:
        """A refused training step put the buffers back: read the flag again, so that
        the first accepted batch initialises."""
        self._seen_initialized = False

    def _load_from_state_dict(self, *args, **kwargs):
        self._seen_initialized = False
        super()._load_from_state_dict(*args, **kwargs)

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set bias and log-scale from the batch ``x`` (statistics per channel)."""
        dims = [d for d in range(x.dim()) if d != x.dim() - 3]
        mean = x.mean(dim=dims, keepdim=True)
        std = (x - mean).pow(2).mean(dim=dims, keepdim=True).sqrt()
        self.bias.copy_(-mean.reshape(self.bias.shape))
        self.logs.copy_(torch.log(self.scale / (std + self.eps)).reshape(self.logs.shape))
        self.initialized.fill_(True)

    def _call(self, x):
        if self.training and not self._seen_initialized:
            if not bool(self.initialized):
                self.initialize(x)
            self._seen_initialized = True
        return (x + self.bias) * torch.exp(self.logs)

    def _inverse(self, z):
        return z * torch.exp(-self.logs) - self.bias

    def log_abs_det_jacobian(self, x, z):
        height, width = x.shape[-2:]
        return (self.logs.sum() * (height * width)).expand(x.shape[:-3])
