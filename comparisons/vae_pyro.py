"""The Table 1 VAE on Pyro's SVI: written by hand, and from pixyz_pyro with ``to_pyro``.

The hand-written model and guide follow Pyro's ``examples/vae/vae_comparison.py``:

.. code-block:: python

    def model(x):
        pyro.module("decoder", decoder)
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", Normal(zeros, ones).to_event(1))
            pyro.sample("x", Bernoulli(decoder(z)).to_event(1), obs=x)

    def guide(x):
        pyro.module("encoder", encoder)
        with pyro.plate("data", len(x)):
            pyro.sample("z", Normal(*encoder(x)).to_event(1))

trained with ``SVI(model, guide, pyro.optim.Adam, Trace_ELBO())`` (or
``JitTrace_ELBO``).  Pyro's loss is summed over the batch; :meth:`step` divides it by
the batch size so that every implementation reports nats per image.
"""
import warnings

import pyro
import pyro.distributions as dist
from pyro.infer import SVI, JitTrace_ELBO, Trace_ELBO

from pixyz_pyro.infer import to_pyro

from .vae import Implementation
from .vae_pixyz import distributions


class PyroSVI(Implementation):
    """Hand-written Pyro model and guide, ``Trace_ELBO``."""

    name, label, group = "pyro", "Pyro SVI, Trace_ELBO", "mc"

    def __init__(self, weights, z_dim, h_dim, lr=1e-3, device="cpu"):
        super().__init__(weights, z_dim, h_dim, lr, device)
        encoder, decoder, tag = self.encoder, self.decoder, f"{self.name}_{id(self):x}"

        def model(x):
            pyro.module(f"decoder_{tag}", decoder)
            with pyro.plate("data", x.shape[0]):
                loc = x.new_zeros((x.shape[0], z_dim))
                z = pyro.sample("z", dist.Normal(loc, x.new_ones(loc.shape)).to_event(1))
                pyro.sample("x", dist.Bernoulli(decoder(z)).to_event(1), obs=x)

        def guide(x):
            pyro.module(f"encoder_{tag}", encoder)
            with pyro.plate("data", x.shape[0]):
                loc, scale = encoder(x)
                pyro.sample("z", dist.Normal(loc, scale).to_event(1))

        self.svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), loss=self.elbo())

    def elbo(self):
        return Trace_ELBO()

    def step(self, x):
        return self.svi.step(x) / x.shape[0]


class PyroJit(PyroSVI):
    """The same, with ``JitTrace_ELBO`` (traced with ``torch.jit`` on the first step)."""

    name, label = "pyro_jit", "Pyro SVI, JitTrace_ELBO"

    def elbo(self):
        return JitTrace_ELBO(ignore_jit_warnings=True)

    def step(self, x):
        if getattr(self, "_traced", False):
            return super().step(x)
        with warnings.catch_warnings():  # torch.jit.trace's deprecation note, once
            warnings.simplefilter("ignore", DeprecationWarning)
            out = super().step(x)
        self._traced = True
        return out


class PixyzSVI(Implementation):
    """pixyz_pyro's distributions handed to Pyro: ``SVI(to_pyro(p * prior,
    observed=["x"]), to_pyro(q), pyro.optim.Adam, Trace_ELBO())``."""

    name, label, group = "pixyz_svi", "pixyz_pyro through Pyro SVI (to_pyro)", "mc"

    def __init__(self, weights, z_dim, h_dim, lr=1e-3, device="cpu"):
        super().__init__(weights, z_dim, h_dim, lr, device)
        q, p, prior = distributions(self, z_dim)
        self.svi = SVI(to_pyro(p * prior, observed=["x"]), to_pyro(q),
                       pyro.optim.Adam({"lr": lr}), loss=Trace_ELBO())

    def step(self, x):
        return self.svi.step(x=x) / x.shape[0]
