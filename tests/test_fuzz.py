"""Fuzz: random wrong inputs to ``sample``, ``get_log_prob``, ``eval`` and ``train``.

Every error must be one of ours (a :class:`~pixyz_pyro.errors.PixyzError` with a
message), never a bare exception from deep inside torch, and a refused call must change
nothing (parameters, buffers, optimizer state, step counts).  Inputs that are wrong in
every reading (a missing or misspelled key, ``None``, a string, a container, an empty
batch, a non-dict) must always be refused; others (an extra dimension, a number, a NaN)
may be accepted where broadcasting makes them meaningful.

``ITERATIONS`` draws with seed ``SEED``; half of them hit a fresh model (first-call
validation), half a warmed-up one (the hot path).
"""
import random

import numpy as np
import pytest
import torch
from _errors_world import World, assert_same, snapshot

from pixyz_pyro.errors import PixyzError

SEED = 0
ITERATIONS = 300

_DTYPES = (torch.int64, torch.int32, torch.bool, torch.uint8, torch.float64, torch.float16,
           torch.complex64)
_JUNK = (None, "x", [1.0, 2.0], (1,), {"a": 1}, b"x", np.zeros((8, 4), dtype=np.float32))
_NUMBERS = (3, 2.5, True)


def _shape(rng: random.Random, valid):
    """A random shape other than ``valid``."""
    while True:
        shape = tuple(rng.choice([0, 1, 2, 3, 4, 5, 8]) for _ in range(rng.randint(0, 4)))
        if shape != tuple(valid):
            return shape


def mutate(rng: random.Random, base: dict):
    """One wrong input: ``(x_dict, kind, must_fail)``."""
    kind = rng.choice(["drop", "near", "junk", "number", "dtype", "shape", "empty", "meta",
                       "nan", "container"])
    d, k = dict(base), rng.choice(sorted(base))
    if kind == "drop":
        del d[k]
    elif kind == "near":
        d[rng.choice([k.upper(), k + "_", " " + k, k + k])] = d.pop(k)
    elif kind == "junk":
        d[k] = rng.choice(_JUNK)
    elif kind == "number":
        d[k] = rng.choice(_NUMBERS)
    elif kind == "dtype":
        d[k] = d[k].to(rng.choice(_DTYPES))
    elif kind == "shape":
        d[k] = torch.rand(_shape(rng, d[k].shape))
    elif kind == "empty":
        d[k] = d[k][:0]
    elif kind == "meta":
        d[k] = d[k].to("meta")
    elif kind == "nan":
        d[k] = d[k].clone().fill_(float("nan"))
    else:
        return rng.choice([[base[k]] * 3, "x", 3, None]), kind, True
    return d, kind, kind in ("drop", "near", "junk", "empty")


def _targets(w):
    """name -> (call, valid input)."""
    z = torch.zeros(8, 2)
    return {
        "train": (w.model.train, {"x": w.x}),
        "eval": (w.loss.eval, {"x": w.x}),
        "sample": (w.q.sample, {"x": w.x}),
        "log_prob": (w.p.get_log_prob, {"x": w.x.round(), "z": z}),
    }


def test_fuzz_wrong_inputs_get_our_errors_and_change_nothing():
    rng = random.Random(SEED)
    warm = World(warm=True)
    raised = 0
    for i in range(ITERATIONS):
        w = warm if i % 2 else World(warm=False)
        name = rng.choice(sorted(_targets(w)))
        call, valid = _targets(w)[name]
        x_dict, kind, must_fail = mutate(rng, valid)
        before = snapshot(w.watched)
        try:
            call(x_dict)
        except PixyzError as e:
            raised += 1
            assert str(e).strip(), f"{i}: {name} {kind}: empty message"
            assert_same(before, snapshot(w.watched), f"{i}: {name} {kind}")
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"iteration {i}: {name}({kind}) leaked {type(e).__name__}: {e}")
        else:
            assert not must_fail, f"iteration {i}: {name}({kind}) was accepted: {x_dict}"
        if w is warm:  # the warm model still trains after any refusal
            warm.model.train({"x": warm.x})
    assert raised > ITERATIONS * 0.8, raised
