"""``comparisons/`` runs end to end: the same-objective check passes and the outputs are
written.  Timings are never asserted (``--quick`` sizes are a smoke test, not a
measurement)."""
import json

import pyro
import pytest
import torch
from pyro.infer.util import is_validation_enabled

from comparisons import extras, table1
from comparisons.vae import TorchBCE, mc_reference, reference_weights
from comparisons.vae_pixyz import PixyzAnalytic, PixyzMC, PixyzRewritten
from pixyz_pyro.loss.plan import compile_plan


@pytest.fixture(autouse=True)
def _restore_torch_settings():
    threads = torch.get_num_threads()
    fallback = torch._inductor.config.fallback_random
    limit = torch._dynamo.config.recompile_limit
    pyro_validation = is_validation_enabled()
    yield
    pyro.enable_validation(pyro_validation)  # the comparisons turn Pyro's off
    torch._dynamo.config.recompile_limit = limit
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)
    torch._inductor.config.fallback_random = fallback


def test_table1_quick_checks_the_objective_and_writes_its_outputs(tmp_path):
    # the compiled ones cost seconds of compilation each: test_compile covers Model's
    impls = [n for n in table1.IMPLEMENTATIONS if "compile" not in n and "cudagraphs" not in n]
    result = table1.main(["--quick", "--out", str(tmp_path), "--impls", ",".join(impls)])
    (cfg,) = result["configs"]
    assert list(cfg["check"]) == impls
    for name, c in cfg["check"].items():
        assert c["ok"], (name, c)
        assert c["relative"] <= 1e-6
    groups = {n: c["group"] for n, c in cfg["check"].items()}
    assert groups["torch"] == groups["pixyz"] == groups["pixyz_rewritten"] == "analytic"
    assert groups["pyro"] == groups["pixyz_mc"] == groups["pixyz_svi"] == "mc"
    assert set(cfg["timing"]) == set(impls)
    assert cfg["timing"]["torch"]["ratio"]["median"] == 1.0
    assert len(cfg["timing"]["pixyz"]["samples_ms"]) == 2  # 2 rounds in --quick
    assert set(cfg["targets"]) == {"pixyz", "pixyz_mc", "pixyz_rewritten", "pixyz_svi",
                                   "pixyz_deferred"}
    assert cfg["targets"]["pixyz_mc"]["impl"] == "pixyz_mc"
    assert cfg["targets"]["pixyz_rewritten"]["reference"] == "pixyz"
    assert result["meta"]["threads"] == 1 and result["meta"]["flush_denormal"]
    assert isinstance(result["meta"]["load_before"], list)

    md = (tmp_path / "table1.md").read_text()
    assert "| pixyz | analytic |" in md
    assert "pixyz_pyro, analytic KL (Model)" in md
    assert "Load average" in md and "Pyro JitTrace_ELBO" in md
    saved = json.loads((tmp_path / "table1.json").read_text())
    assert saved["configs"][0]["check"]["pixyz_svi"]["ok"]
    assert (tmp_path / "table1.png").stat().st_size > 1000


def test_the_check_compares_losses_not_timings():
    """Analytic and Monte Carlo objectives differ; each implementation matches its own
    group's hand-written reference on the same weights, batch and noise."""
    w = reference_weights(3, 5, seed=1)
    x = (torch.rand(6, 784) > 0.5).float()
    impls = {"torch": TorchBCE(w, 3, 5), "pixyz": PixyzAnalytic(w, 3, 5),
             "pixyz_mc": PixyzMC(w, 3, 5)}
    check = table1.check_objective(impls, w, 3, 5, x, x, seed=7)
    assert all(c["ok"] for c in check.values())
    assert check["pixyz_mc"]["reference"] == pytest.approx(mc_reference(w, 3, 5, x, 7),
                                                           rel=1e-6)
    assert check["pixyz_mc"]["reference"] != pytest.approx(check["torch"]["reference"],
                                                           rel=1e-6)


def test_a_different_objective_is_caught():
    """A variant that drops the KL term must fail the check."""
    class NoKL(TorchBCE):
        name = "no_kl"

        def loss(self, x):
            loc, scale = self.encoder(x)
            z = loc + scale * torch.randn_like(loc)
            return torch.nn.functional.binary_cross_entropy(
                self.decoder(z), x, reduction="sum") / x.shape[0]

    w = reference_weights(3, 5, seed=1)
    x = (torch.rand(6, 784) > 0.5).float()
    check = table1.check_objective({"torch": TorchBCE(w, 3, 5), "no_kl": NoKL(w, 3, 5)},
                                   w, 3, 5, x, x, seed=7)
    assert check["torch"]["ok"] and not check["no_kl"]["ok"]
    assert check["no_kl"]["relative"] > 1e-5


def test_extras_quick_writes_dmm_formula_and_scaling(tmp_path):
    result = extras.main(["--quick", "--out", str(tmp_path)])
    dmm = result["dmm"]
    assert dmm["relative"] <= 1e-6
    losses = list(dmm["losses"].values())
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert result["formula"]["terms"] == 50 and result["formula"]["characters"] > 500
    assert [r["factors"] for r in result["scaling"]] == [1, 4]
    md = (tmp_path / "extras.md").read_text()
    assert "IterativeLoss over T=5" in md and "Building a 50-term loss" in md
    assert json.loads((tmp_path / "extras.json").read_text())["dmm"]["T"] == 5


def test_dmm_without_checks_steps_as_the_default_one_and_leaves_validation_as_it_was():
    """The extras' validation-off row computes the same step as the default one (same
    weights, batch and seed: the same loss and the same updated weights), and only inside
    its own step."""
    from comparisons import dmm
    from pixyz_pyro import get_validation

    impls, data = dmm.build(steps=3, batch=4, unchecked=True)
    before = get_validation()
    losses = dmm.same_objective(impls, data)
    assert get_validation() == before
    assert losses[dmm.UNCHECKED] == losses["pixyz_pyro IterativeLoss"]
    checked, unchecked = impls["pixyz_pyro IterativeLoss"], impls[dmm.UNCHECKED]
    for a, b in zip(checked.nets.parameters(), unchecked.nets.parameters()):
        assert torch.equal(a, b)


def test_extras_report_splits_the_cold_compile_from_the_vector_probe():
    """With ``--cold-cache`` the DMM's compile time is reported apart from Inductor's
    once-per-machine probe of the CPU's vector instructions, and with their sum."""
    timing = {"ms": {"median": 2.0, "q1": 1.9, "q3": 2.1},
              "ratio": {"median": 1.1, "q1": 1.0, "q3": 1.2}}
    result = {"threads": 1, "device": "cpu", "load_before": [0], "load_after": [0],
              "cold_cache": True, "scaling": [],
              "formula": {"terms": 50, "build_s": 1e-4, "first_print_s": 0.3,
                          "print_s": 0.01, "characters": 900},
              "dmm": {"T": 50, "losses": {}, "relative": 0.0, "compile_s": 20.2,
                      "isa_probe_s": 13.9, "target": 1.05,
                      "timing": {"hand-written loop": timing,
                                 "pixyz_pyro IterativeLoss": timing,
                                 "pixyz_pyro IterativeLoss, validation off": timing}}}
    md = extras.markdown(result)
    assert "took 20 s with an empty Inductor cache, after Inductor's probe" in md
    assert "(14 s:" in md and "34 s in all" in md
    assert "With validation off the same step is 1.100x" in md
    result["dmm"]["isa_probe_s"] = None
    assert "took 20 s with an empty Inductor cache." in extras.markdown(result)


# --- scaling curves (python -m comparisons.scaling) -------------------------------------------
def test_scaling_quick_checks_every_curve_and_writes_its_outputs(tmp_path):
    from comparisons.scaling.cli import CURVES
    from comparisons.scaling.cli import main as scaling_main

    result = scaling_main(["--quick", "--out", str(tmp_path)])
    assert list(result["curves"]) == ["factors", "batch", "particles", "sequence"]
    assert result["meta"]["threads"] == 1 and result["meta"]["quick"]
    for name, curve in result["curves"].items():
        ref = CURVES[name].reference
        assert [p["size"] for p in curve["points"]] == list(CURVES[name].quick_sizes)
        for p in curve["points"]:
            impls = list(p["timing"])
            assert ref in impls and any("pixyz" in n for n in impls)
            assert any("Pyro" in n for n in impls)  # each curve has a Pyro implementation
            for n, c in p["check"].items():
                assert c["ok"] and c["relative"] <= 1e-6, (name, p["size"], n, c)
            assert p["timing"][ref]["ratio"]["median"] == 1.0
            assert p["timing"][ref]["overhead_ms"]["median"] == 0.0
            assert (p["rounds"], p["steps"]) == (2, 1)
            assert len(p["timing"][ref]["ms"]) == 3  # median and quartiles
            for n in impls:
                assert p["build_s"][n] > 0 and p["first_step_s"][n] > 0
                assert p["memory"][n]["python_bytes"] > 0
                assert p["memory"][n]["what"] == "live tensors"
                assert p["memory"][n]["device_bytes"] > 0  # a step creates tensors
        md = (tmp_path / f"scaling_{name}.md").read_text()
        assert curve["title"] in md and "slope, all sizes" in md
        assert (tmp_path / f"scaling_{name}.png").stat().st_size > 1000
    for name in ("memory", "build"):
        md = (tmp_path / f"scaling_{name}.md").read_text()
        assert all(c["title"] in md for c in result["curves"].values())
        assert (tmp_path / f"scaling_{name}.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "scaling.json").read_text())
    assert [p["size"] for p in saved["curves"]["sequence"]["points"]] == [2, 4]


def test_scaling_flags_an_implementation_with_another_objective():
    from comparisons.scaling import factors
    from comparisons.scaling.curve import Curve
    from comparisons.scaling.runner import run_size

    class Doubled(factors.Handwritten):
        def loss(self, data):
            return 2 * super().loss(data)

    def setup(k, device, quick):
        s = factors.setup(k, device, quick)
        chain = factors.Chain(k, factors.DIM)
        return type(s)({**s.factories, "doubled": lambda: Doubled(chain)}, s.data)

    curve = Curve("wrong", "t", "K", (2,), (2,), "hand-written PyTorch", setup)
    point = run_size(curve, 2, seconds=1.0, quick=True)
    assert point["check"]["pixyz_pyro Model"]["ok"]
    assert not point["check"]["doubled"]["ok"]
    assert point["check"]["doubled"]["relative"] > 0.5


def test_log_log_slope_and_where_a_ratio_settles():
    import doctest

    from comparisons.scaling import fit
    from comparisons.scaling.fit import settles_at, slope

    assert doctest.testmod(fit).failed == 0
    sizes = [1, 2, 4, 8, 16]
    assert slope(sizes, [3.0 * n ** 0.5 for n in sizes]) == pytest.approx(0.5)
    assert slope(sizes, [7.0] * 5) == pytest.approx(0.0)
    assert slope([4], [1.0]) is None and slope([1, 2], [1.0, 0.0]) is None
    assert settles_at(sizes, [2.0, 1.2, 1.04, 1.1, 1.0], 1.05) == 16
    assert settles_at(sizes, [2.0, 1.2, 1.04, 1.01, 1.0], 1.05) == 4
    assert settles_at(sizes, [1.0, 1.0, 1.0, 1.0, 1.2], 1.05) is None


def test_rounds_fit_the_seconds_within_their_bounds():
    from comparisons.scaling.runner import MAX_ROUNDS, MAX_STEPS, MIN_ROUNDS, plan_rounds

    assert plan_rounds(10.0, 0.1) == (MAX_ROUNDS, 10)  # 10 x 10 x 0.1 s = 10 s
    assert plan_rounds(1.0, 0.5) == (MIN_ROUNDS, 1)  # at least 3 rounds of one step
    assert plan_rounds(-5.0, 0.5) == (MIN_ROUNDS, 1)  # over budget: the minimum
    assert plan_rounds(1e6, 1e-3) == (MAX_ROUNDS, MAX_STEPS)


def test_memory_measures_count_what_a_step_allocates():
    from comparisons.scaling import memory

    n = 16 * 2 ** 20  # 64 MB of float32, written to
    peak = memory.resident_peak(lambda: torch.ones(n).sum())
    if peak is not None:  # None where /proc/self/clear_refs cannot be written
        assert 60 * 2 ** 20 <= peak <= 256 * 2 ** 20
    assert memory.python_peak(lambda: list(range(100_000))) >= 100_000 * 8
    if torch.cuda.is_available():
        assert memory.cuda_peak(lambda: torch.ones(n, device="cuda").sum()) >= 4 * n


def test_a_full_size_point_sizes_its_rounds_from_its_warm_up():
    from comparisons.scaling import factors
    from comparisons.scaling.runner import MAX_ROUNDS, MAX_STEPS, MIN_ROUNDS, run_size

    point = run_size(factors.CURVE, 2, seconds=0.2)  # not --quick: two warm-up steps
    assert MIN_ROUNDS <= point["rounds"] <= MAX_ROUNDS and 1 <= point["steps"] <= MAX_STEPS
    assert set(point["memory"]) == set(factors.IMPLEMENTATIONS)
    for m in point["memory"].values():
        assert m["device_bytes"] is None or m["device_bytes"] >= 0
    assert all(c["ok"] for c in point["check"].values())


def test_pyro_bridge_quick_checks_the_objective_and_writes_its_outputs(tmp_path):
    """Pyro's vae.py three ways (SVI + Trace_ELBO, Model on from_pyro, SVI + SVILoss):
    one loss on the same weights and seed; the ratio is reported, not asserted."""
    from comparisons import pyro_bridge
    validating = is_validation_enabled()
    try:
        result = pyro_bridge.main(["--quick", "--out", str(tmp_path)])
    finally:
        pyro.enable_validation(validating)
    losses = result["check"]["losses"]
    assert set(losses) == {"pyro", "pixyz", "pixyz_svi"}
    assert result["check"]["relative"] <= 1e-5
    assert set(result["timing"]) == {"pyro", "pixyz"}
    assert result["timing"]["pyro"]["ratio"]["median"] == 1.0
    assert result["meta"]["threads"] == 1
    md = (tmp_path / "pyro_bridge.md").read_text()
    assert "| Model(from_pyro(vae.model), from_pyro(vae.guide)) |" in md
    assert json.loads((tmp_path / "pyro_bridge.json").read_text())["check"] == result["check"]
    assert len(pyro.get_param_store()) == 0


def test_pyro_bridge_refuses_two_svis_on_vae_pys_store_names():
    from comparisons import pyro_bridge
    with pytest.raises(ValueError, match="pyro and pixyz_svi share Pyro's store names"):
        pyro_bridge.build(3, 8, 1e-3, "cpu")


def test_ar_sampling_quick_times_both_distributions_and_writes_its_outputs(tmp_path):
    from comparisons import ar_sampling

    results = ar_sampling.main(["--quick", "--out", str(tmp_path)])
    assert [r["D"] for r in results["AutoregressiveBernoulli"]] == [4, 8]
    assert [r["D"] for r in results["PixelCNN"]] == [4, 9]
    assert all(r["sample_ms"] > 0 and r["log_prob_ms"] > 0
               for rows in results.values() for r in rows)
    assert "log-log slope" in (tmp_path / "ar_sampling.md").read_text()
    assert (tmp_path / "ar_sampling.png").stat().st_size > 1000


def test_live_tensor_counter_sees_the_peak_and_the_frees():
    """The CPU memory measure: the peak of tensor storage created inside the mode."""
    from comparisons.scaling.memory import tensor_peak
    mb = 2 ** 20

    def step():
        a = torch.ones(mb // 4)  # 1 MB
        b = a * 2  # 2 MB live
        del a
        c = b + 1  # 2 MB live again
        return c.sum()

    assert tensor_peak(step) == 2 * mb + 4  # b and c (a was freed), and the sum


def test_the_rewritten_loss_is_the_hand_written_analytic_loss():
    """``pixyz_rewritten`` trains the loss that ``pixyz`` writes by hand: the same printed
    formula, the same plan (terms, inputs, nodes) and the same values on the same data."""
    w = reference_weights(3, 5, seed=0)
    by_hand, rewritten = PixyzAnalytic(w, 3, 5), PixyzRewritten(w, 3, 5)
    a, b = by_hand.model.loss_cls, rewritten.model.loss_cls
    assert str(a) == str(b)
    assert "D_{KL}" in str(b) and "\\log q" not in str(b)
    pa, pb = compile_plan(a), compile_plan(b)
    assert pa.input_var == pb.input_var
    assert [(t.path, type(t.node)) for t in pa.terms] == [(t.path, type(t.node))
                                                          for t in pb.terms]
    x = torch.bernoulli(torch.full((16, 784), 0.3))
    torch.manual_seed(3)
    va = a.eval({"x": x})
    torch.manual_seed(3)
    vb = b.eval({"x": x})
    assert torch.equal(va, vb)
    torch.manual_seed(4)  # one training step each, from the same weights and noise
    la = by_hand.step(x)
    torch.manual_seed(4)
    lb = rewritten.step(x)
    assert abs(la - lb) <= 1e-6 * abs(la)
    for u, v in zip(by_hand.encoder.parameters(), rewritten.encoder.parameters()):
        torch.testing.assert_close(u, v, rtol=1e-6, atol=1e-7)


def test_live_tensor_counter_is_exact_when_small_and_an_upper_bound_when_checked_sparsely(
        monkeypatch):
    """Up to EXACT_UP_TO live storages every free is seen (exact); beyond, frees are
    looked for every live // SPARSE_CHECKS operators, and a peak reached between two
    looks is flagged as an upper bound, never below the true peak."""
    from comparisons.scaling import memory
    mb = 2 ** 20

    def step():
        kept = [torch.ones(1) for _ in range(8)]  # 8 live storages of 4 bytes
        a = torch.ones(mb // 4)
        b = a * 2
        del a
        c = b + 1
        return c.sum(), kept

    exact = memory.live_tensors(step)
    assert exact.exact and exact.peak == 2 * mb + 4 + 8 * 4
    monkeypatch.setattr(memory, "EXACT_UP_TO", 1)
    monkeypatch.setattr(memory, "SPARSE_CHECKS", 1)  # look every 8+ operators
    sparse = memory.live_tensors(step)
    assert not sparse.exact and sparse.peak >= exact.peak

    def reuse(addresses):  # a freed storage whose address the allocator hands out again,
        first = [torch.zeros(1) for _ in range(16)]  # (checks every 16+ operators)
        a = torch.ones(1024)  # alive at the peak, after a check that drops the freed one
        addresses.append(a.data_ptr())
        del a
        b = torch.ones(1024)
        addresses.append(b.data_ptr())
        small = [torch.zeros(1) for _ in range(40)]  # operators enough for a check
        c = b * 2
        d = c * 2
        return b, c, d, small, first

    monkeypatch.undo()
    exact_peak = 3 * 4096 + 56 * 4
    assert memory.live_tensors(lambda: reuse([])).peak == exact_peak
    monkeypatch.setattr(memory, "EXACT_UP_TO", 1)
    monkeypatch.setattr(memory, "SPARSE_CHECKS", 1)
    for _ in range(50):  # whether the allocator reuses the address varies from call to call
        addresses: list = []
        sparse = memory.live_tensors(lambda seen=addresses: reuse(seen))
        if addresses[0] == addresses[1]:
            assert sparse.peak >= exact_peak
            return
    pytest.skip("the allocator never reused the freed address")


def test_instruction_counts_are_read_in_dump_order_and_divided_per_step(tmp_path):
    """``comparisons.instructions`` reads callgrind's ``totals:`` of each dump in the
    order callgrind wrote them (``cg.PID.N``, then ``cg.PID`` at exit), skips the
    start-up, and gives each phase per step and against its model's hand-written one.
    Valgrind itself is not run here."""
    from comparisons import instructions
    n = len(instructions.PHASES)
    counts = [9_000] + [100 * (i + 1) for i in range(n)] + [7]
    for i, c in enumerate(counts[:-1], start=1):
        (tmp_path / f"cg.42.{i}").write_text(f"events: Ir\nsummary: {c}\ntotals: {c}\n")
    (tmp_path / "cg.42").write_text(f"totals: {counts[-1]}\n")
    assert instructions.totals(sorted(tmp_path.glob("cg.*"))) == counts
    result = instructions.per_step(counts, steps=2)
    rows = list(result.values())
    assert [r["instructions"] for r in rows] == [50 * (i + 1) for i in range(n)]
    models = [m for m, _ in instructions.PHASES]
    first = {m: models.index(m) for m in models}
    for (model, _), r in zip(instructions.PHASES, rows):
        assert r["ratio"] == pytest.approx(r["instructions"] / rows[first[model]]["instructions"])
    assert "| ratio |" in instructions.markdown(result, 2, "10x400")
    with pytest.raises(ValueError, match="phase dumps"):
        instructions.per_step(counts[:3], steps=2)
