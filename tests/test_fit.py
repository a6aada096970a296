"""``pixyz_pyro.model.fit``: history, convergence, terms, checkpoints, resume, stopping."""
import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pixyz_pyro.dist import Normal
from pixyz_pyro.errors import ModelError
from pixyz_pyro.loss import KullbackLeibler, LogProb
from pixyz_pyro.model import EarlyStopping, History, Model, fit

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def mean_model(lr=0.1):
    """``-log N(x | loc, 1)`` with a trainable ``loc``: its minimum is log(2 pi) / 2 at
    ``loc = x``."""
    p = Normal(loc=nn.Parameter(torch.zeros(2)), scale=1.0, var=["x"], features_shape=[2])
    return p, Model(-LogProb(p).mean(), distributions=[p], optimizer_params={"lr": lr})


class Encoder(Normal):
    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q", features_shape=[2])
        self.net = nn.Linear(3, 4)

    def forward(self, x):
        h = self.net(x)
        return {"loc": h[..., :2], "scale": nn.functional.softplus(h[..., 2:]) + 0.1}


class Decoder(Normal):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p", features_shape=[3])
        self.net = nn.Linear(2, 3)

    def forward(self, z):
        loc = self.net(z)
        return {"loc": loc, "scale": torch.ones_like(loc)}


def vae():
    """A tiny VAE whose loss draws ``z`` (so its value depends on the RNG)."""
    q, p = Encoder(), Decoder()
    prior = Normal(loc=torch.zeros(2), scale=torch.ones(2), var=["z"], name="p_{prior}",
                   features_shape=[2])
    loss = (KullbackLeibler(q, prior) - p.log_prob().expectation(q)).mean()
    return Model(loss, distributions=[q, p], optimizer_params={"lr": 0.01})


def loader(n=64, batch_size=16):
    """Shuffled by the global RNG: the data order depends on the restored RNG state."""
    return DataLoader(TensorDataset(torch.randn(n, 3)), batch_size=batch_size, shuffle=True)


def params(model):
    return [p.detach().clone() for p in model.distributions.parameters()]


def test_history_has_one_entry_per_epoch_and_counts_steps():
    _, model = mean_model()
    data = [torch.full((4, 2), 1.0)] * 5
    h = fit(model, data, epochs=3, test_data=data[:2], progress=False)
    assert isinstance(h, History)
    assert (h.epochs, h.steps, h.stopped) == (3, 15, None)
    assert len(h.train) == len(h.test) == len(h["seconds"]) == 3
    assert model.step_count == 15


def test_the_loss_decreases_to_its_closed_form_minimum():
    p, model = mean_model()
    data = [{"x": torch.full((8, 2), 3.0)}] * 20
    h = fit(model, data, epochs=5, test_data=data[:1], progress=False)
    assert h.train[0] > h.train[-1]
    # -log N(3 | 3, 1) summed over 2 features
    assert h.test[-1] == pytest.approx(2 * HALF_LOG_2PI, abs=0.02)
    assert torch.allclose(p.loc.detach(), torch.full((2,), 3.0), atol=0.1)


def test_losses_are_averaged_per_example_over_unequal_batches():
    p, model = mean_model(lr=0.0)  # nothing moves: -log N(x | 0, 1) per example
    xs = [torch.zeros(3, 2), torch.full((1, 2), 2.0)]
    h = fit(model, xs, epochs=1, test_data=xs, progress=False)
    per_example = [2 * HALF_LOG_2PI] * 3 + [2 * HALF_LOG_2PI + 4.0]  # 2 features of 2**2/2
    assert h.train[0] == pytest.approx(sum(per_example) / 4)
    assert h.test[0] == pytest.approx(sum(per_example) / 4)


def test_a_dataloader_of_tuples_goes_through_to_dict():
    model = vae()
    h = fit(model, loader(), epochs=2, test_data=loader(), to_dict=lambda x: {"x": x},
            progress=False)
    assert h.steps == 8 and all(math.isfinite(v) for v in h.train + h.test)


def test_terms_are_the_keys_of_return_terms_and_sum_to_the_test_loss():
    model = vae()
    x = torch.randn(8, 3)
    h = fit(model, [x], epochs=2, test_data=[x], terms=True, progress=False)
    _, parts = model.test_loss_cls.eval({"x": x}, return_terms=True)
    assert set(h.terms) == set(parts) and len(parts) == 2
    for epoch in range(2):
        assert sum(v[epoch] for v in h.terms.values()) == pytest.approx(h.test[epoch],
                                                                          rel=1e-5)


def test_test_seed_scores_with_fixed_noise_and_leaves_training_untouched():
    torch.manual_seed(1)
    a = vae()
    x = torch.randn(8, 3)
    torch.manual_seed(2)
    fit(a, [x], epochs=3, progress=False)
    torch.manual_seed(1)
    b = vae()
    torch.manual_seed(2)
    h = fit(b, [x], epochs=3, test_data=[x], test_seed=5, progress=False)
    assert all(torch.equal(u, v) for u, v in zip(params(a), params(b)))
    torch.manual_seed(5)
    assert h.test[-1] == pytest.approx(float(b.test({"x": x})), rel=1e-6)


def test_checkpoints_every_n_epochs_and_after_the_last(tmp_path, monkeypatch):
    _, model = mean_model()
    path = tmp_path / "ckpt.pt"
    saved = []
    save = model.save
    monkeypatch.setattr(model, "save", lambda p: (saved.append(model.step_count), save(p)))
    fit(model, [torch.ones(2, 2)] * 3, epochs=5, checkpoint=path, every=2, progress=False)
    assert saved == [6, 12, 15]  # after epochs 2, 4 and 5
    assert path.is_file()
    history = json.loads((tmp_path / "ckpt.pt.history.json").read_text())
    assert history["epochs"] == 5 and history["step_count"] == 15


def test_resume_continues_bit_exactly(tmp_path):
    path = tmp_path / "vae.pt"
    torch.manual_seed(3)
    data = loader()
    straight = vae()
    h4 = fit(straight, data, epochs=4, test_data=[torch.randn(8, 3)], to_dict=lambda x: {"x": x},
             progress=False)

    torch.manual_seed(3)
    data = loader()
    first = vae()
    test = [torch.randn(8, 3)]
    fit(first, data, epochs=2, test_data=test, to_dict=lambda x: {"x": x}, checkpoint=path,
        progress=False)
    torch.manual_seed(99)  # the resumed run must not depend on the state it starts in
    second = vae()
    h = fit(second, data, epochs=4, test_data=test, to_dict=lambda x: {"x": x},
            checkpoint=path, resume=True, progress=False)
    assert all(torch.equal(u, v) for u, v in zip(params(straight), params(second)))
    assert h.train == h4.train and h.test == h4.test and h.epochs == 4 and h.steps == 16


def test_resume_without_a_checkpoint_starts_from_scratch(tmp_path):
    _, model = mean_model()
    h = fit(model, [torch.ones(2, 2)], epochs=2, checkpoint=tmp_path / "c.pt", resume=True,
            progress=False)
    assert h.epochs == 2


def test_resume_refuses_a_checkpoint_that_does_not_match_its_history(tmp_path):
    _, model = mean_model()
    path = tmp_path / "c.pt"
    fit(model, [torch.ones(2, 2)], epochs=2, checkpoint=path, progress=False)
    model.train({"x": torch.ones(2, 2)})
    model.save(str(path))  # one step further than the history says
    with pytest.raises(ModelError, match=r"is at step 3, its history .* at step 2"):
        fit(mean_model()[1], [torch.ones(2, 2)], epochs=3, checkpoint=path, resume=True,
            progress=False)


def test_a_callback_stops_training_and_the_stop_is_checkpointed(tmp_path):
    _, model = mean_model()
    path = tmp_path / "c.pt"

    def enough(epoch, history):
        history.log(double=2 * history.train[-1])
        return epoch == 2

    h = fit(model, [torch.ones(2, 2)], epochs=10, callbacks=[enough], checkpoint=path,
            every=5, progress=False)
    assert h.epochs == 2 and h.stopped == "stopped by enough after epoch 2"
    assert h["double"] == pytest.approx([2 * v for v in h.train])
    assert json.loads((tmp_path / "c.pt.history.json").read_text())["epochs"] == 2


def test_early_stopping_waits_patience_epochs_without_improvement():
    _, model = mean_model(lr=0.0)  # the test loss never improves after epoch 1
    h = fit(model, [torch.ones(2, 2)], epochs=10, test_data=[torch.ones(2, 2)],
            callbacks=[EarlyStopping("test", patience=2)], progress=False)
    assert h.epochs == 3 and "EarlyStopping" in h.stopped


def test_early_stopping_names_a_missing_metric():
    _, model = mean_model()
    with pytest.raises(ModelError, match=r"monitors 'test', but the history has only "
                                         r"\['seconds', 'train'\]"):
        fit(model, [torch.ones(2, 2)], epochs=2, callbacks=[EarlyStopping()],
            progress=False)


def test_max_steps_stops_mid_epoch():
    _, model = mean_model()
    h = fit(model, [torch.ones(2, 2)] * 4, epochs=3, max_steps=6, progress=False)
    assert (h.epochs, h.steps, h.stopped) == (2, 6, "max_steps=6 reached")


def test_a_progress_bar_goes_to_stderr(capsys):
    _, model = mean_model()
    fit(model, [torch.ones(2, 2)] * 3, epochs=2, test_data=[torch.ones(2, 2)])
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "test=" in err


def test_an_exhausted_iterator_function_is_refused():
    _, model = mean_model()
    once = iter([torch.ones(2, 2)])
    with pytest.raises(ModelError, match=r"train_data gave no batches in epoch 2; a "
                                         r"function passed as train_data must return a "
                                         r"fresh iterator"):
        fit(model, lambda: once, epochs=2, progress=False)


def test_bad_batches_are_refused_in_user_terms():
    model = vae()
    with pytest.raises(ModelError, match=r"a one-shot iterator \(generator\)"):
        fit(model, (x for x in [torch.ones(2, 3)]), epochs=1, progress=False)
    with pytest.raises(ModelError, match=r"train_data gave a batch of type list; .* the "
                                         r"loss's inputs \['x'\]"):
        fit(model, [[torch.ones(2, 3)]], epochs=1, progress=False)
    prior = Normal(loc=torch.zeros(1), scale=torch.ones(1), var=["y"], features_shape=[1])
    p = Normal(loc=nn.Parameter(torch.zeros(1)), scale=1.0, var=["x"], features_shape=[1])
    two = Model(-(LogProb(p) + LogProb(prior)).mean(), distributions=[p])
    with pytest.raises(ModelError, match=r"a tensor batch, but the loss takes the inputs "
                                         r"\['x', 'y'\]"):
        fit(two, [torch.ones(2, 1)], epochs=1, progress=False)


def test_to_dict_applies_to_batches_that_are_not_dicts():
    _, model = mean_model(lr=0.0)
    seen = []
    h = fit(model, [torch.zeros(2, 2)], epochs=1, test_data=[{"x": torch.zeros(4, 2)}],
            to_dict=lambda x: seen.append(len(x)) or {"x": x}, progress=False)
    assert seen == [2] and h.test[0] == pytest.approx(2 * HALF_LOG_2PI)


def test_tensorboard_scalars_for_the_losses_and_each_term(tmp_path):
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    model = vae()
    x = torch.randn(8, 3)
    h = fit(model, [x], epochs=3, test_data=[x], terms=True, log_dir=tmp_path,
            progress=False)
    events = accumulator.EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert tags == {"loss/train", "loss/test", "metrics/seconds", "terms/0", "terms/1"}
    assert [e.value for e in events.Scalars("loss/test")] == pytest.approx(h.test)
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2, 3]
    keys = list(h.terms)
    assert [e.value for e in events.Scalars("terms/1")] == pytest.approx(h.terms[keys[1]])


def test_without_tqdm_fit_trains_and_says_what_it_skipped(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import tqdm.auto fails
    _, model = mean_model()
    with pytest.warns(UserWarning, match=r"tqdm is not installed, so there is no progress "
                                         r"bar"):
        h = fit(model, [torch.ones(2, 2)], epochs=2)
    assert h.epochs == 2


@pytest.mark.skipif(not hasattr(Model, "fit"), reason="Model.fit is not there yet")
def test_the_model_method_is_the_function():
    torch.manual_seed(4)
    a = vae()
    x = torch.randn(8, 3)
    torch.manual_seed(5)
    h1 = fit(a, [x], epochs=2, test_data=[x], progress=False)
    torch.manual_seed(4)
    b = vae()
    torch.manual_seed(5)
    h2 = b.fit([x], 2, test_data=[x], progress=False)
    assert h1.train == h2.train and h1.test == h2.test
