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
from comparisons.vae_pixyz import PixyzAnalytic, PixyzMC


@pytest.fixture(autouse=True)
def _restore_torch_settings():
    threads = torch.get_num_threads()
    fallback = torch._inductor.config.fallback_random
    limit = torch._dynamo.config.recompile_limit
    yield
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
    assert groups["torch"] == groups["pixyz"] == "analytic"
    assert groups["pyro"] == groups["pixyz_mc"] == groups["pixyz_svi"] == "mc"
    assert set(cfg["timing"]) == set(impls)
    assert cfg["timing"]["torch"]["ratio"]["median"] == 1.0
    assert len(cfg["timing"]["pixyz"]["samples_ms"]) == 2  # 2 rounds in --quick
    assert set(cfg["targets"]) == {"pixyz", "pixyz_mc", "pixyz_svi"}
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
