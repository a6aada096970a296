"""Shared test settings: one torch thread, a fixed seed and an empty Pyro parameter store
per test, a quiet hypothesis.

Every test starts from ``torch.manual_seed(0)``, so a test that draws samples gives the
same numbers however the suite is ordered or filtered.
"""
import random

import pyro
import pytest
import torch

torch.set_num_threads(1)

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is a dev dependency; only the property tests need it
    pass
else:
    settings.register_profile(
        "pixyz_pyro", deadline=None, max_examples=40, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("pixyz_pyro")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    random.seed(0)
    yield
    # Examples call torch.set_flush_denormal(True), which is process-wide processor
    # state; restore IEEE behaviour so later tests (hypothesis floats) see subnormals.
    torch.set_flush_denormal(False)


@pytest.fixture(autouse=True)
def _clean_param_store():
    """Pyro's parameter store is process-wide: each test starts and ends with it empty."""
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()
