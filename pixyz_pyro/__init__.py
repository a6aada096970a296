"""pixyz_pyro: deep generative models written like the papers, running on Pyro."""
__version__ = "0.1.0"
