"""Speed, side by side: pixyz_pyro against hand-written PyTorch and Pyro, in one process.

* ``python -m comparisons.table1``: the paper's Table 1 (a VAE in nine implementations,
  four sizes), after checking that every implementation computes the same objective;
* ``python -m comparisons.extras``: a deep Markov model over 50 steps, the cost of
  building and printing formulas, and the per-step overhead against the number of
  factors in a joint;
* ``python -m comparisons``: both;
* ``python -m comparisons.scaling``: scaling curves (factors, batch size, Monte Carlo
  samples, sequence length; peak memory; plan building), against hand-written PyTorch and
  Pyro in one run, bounded by ``--budget`` (about ten minutes).

Every timing is a ratio measured in one process, with the implementations interleaved
in rounds (see :mod:`comparisons.timing`).  Nothing here is asserted by the tests except
that the objectives agree and the outputs are written.
"""
