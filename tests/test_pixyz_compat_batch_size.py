"""``batch_size=`` in ``Loss.eval``, ``Model.train`` and ``Model.test``: Pixyz's example
``normalizing_flow_toy`` passes it meaning the number of draws.  Pixyz 0.3.3 ignored it
(and trained on one draw); pixyz_pyro reads it as ``batch_n`` with a DeprecationWarning.
Both given is an error; other misspellings keep the did-you-mean ``KeywordError``."""
import re

import pytest
import torch
from torch import nn

from pixyz_pyro.dist import Normal
from pixyz_pyro.errors import KeywordError
from pixyz_pyro.loss import Expectation, LogProb
from pixyz_pyro.model import VI, Model


def m(text):
    return re.escape(text)


def _prior_and_q():
    prior = Normal(loc=torch.zeros(2), scale=torch.ones(2), var=["z"], name="p")
    q = Normal(loc=nn.Parameter(torch.zeros(2)), scale=torch.ones(2), var=["z"], name="q")
    return prior, q


def test_eval_reads_batch_size_as_batch_n():
    p = Normal(loc=0., scale=1., var=["x"])
    loss = Expectation(p, LogProb(p))
    with pytest.warns(DeprecationWarning, match=m(
            "Expectation.eval(): batch_size=5 is read as batch_n=5 (the number of draws "
            "of a distribution that no input conditions); Pixyz's spelling is batch_n, "
            "and Pixyz 0.3.3 ignored batch_size")) as record:
        value, samples = loss.eval(batch_size=5, return_dict=True)
    assert record[0].filename == __file__
    assert value.shape == (5,) and samples["x"].shape[0] == 5
    # the same draws as batch_n=5 under one seed
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning):
        a = loss.eval(batch_size=5)
    torch.manual_seed(0)
    assert torch.equal(a, loss.eval(batch_n=5))


def test_model_train_and_test_read_batch_size_as_batch_n():
    prior, q = _prior_and_q()
    loss = (Expectation(q, LogProb(q)) - Expectation(q, LogProb(prior))).mean()
    model = Model(loss, distributions=[q], optimizer=torch.optim.SGD,
                  optimizer_params={"lr": 0.1})
    twin = Model(loss, distributions=[q], optimizer=torch.optim.SGD,
                 optimizer_params={"lr": 0.1})
    state = {k: v.clone() for k, v in q.state_dict().items()}
    torch.manual_seed(1)
    with pytest.warns(DeprecationWarning, match=m("Model.train(): batch_size=7 is read as "
                                                  "batch_n=7")):
        a = model.train(batch_size=7)
    after = q.loc.detach().clone()
    q.load_state_dict(state)
    torch.manual_seed(1)
    b = twin.train(batch_n=7)
    assert torch.equal(a, b) and torch.equal(after, q.loc.detach())
    torch.manual_seed(2)
    with pytest.warns(DeprecationWarning, match=m("Model.test(): batch_size=7")):
        t = model.test(batch_size=7)
    torch.manual_seed(2)
    assert torch.equal(t, model.test(batch_n=7))


def test_vi_train_with_batch_size_is_vi_train_with_batch_n():
    # normalizing_flow_toy: VI(prior, q).train(batch_size=...); VI(p, q) trains q
    prior, q = _prior_and_q()
    model = VI(prior, q, optimizer=torch.optim.SGD, optimizer_params={"lr": 0.1})
    state = {k: v.clone() for k, v in q.state_dict().items()}
    torch.manual_seed(3)
    with pytest.warns(DeprecationWarning, match=m("VI.train(): batch_size=16 is read as "
                                                  "batch_n=16")):
        a = model.train(batch_size=16)
    after = q.loc.detach().clone()
    q.load_state_dict(state)
    torch.manual_seed(3)
    twin = VI(prior, q, optimizer=torch.optim.SGD, optimizer_params={"lr": 0.1})
    b = twin.train(batch_n=16)
    assert torch.isfinite(a) and torch.equal(a, b) and torch.equal(after, q.loc.detach())
    # the loss is a mean over 16 draws: the draws of one evaluation
    _, samples = model.loss_cls.eval(batch_n=16, return_dict=True)
    assert samples["z"].shape == (16, 2)


@pytest.mark.parametrize("entry", ["eval", "train", "test"])
def test_batch_size_and_batch_n_together_is_an_error(entry):
    prior, q = _prior_and_q()
    loss = (Expectation(q, LogProb(q)) - Expectation(q, LogProb(prior))).mean()
    model = Model(loss, distributions=[q])
    call = {"eval": loss.eval, "train": model.train, "test": model.test}[entry]
    who = {"eval": "BatchMean.eval()", "train": "Model.train()", "test": "Model.test()"}[entry]
    before = q.loc.detach().clone()
    with pytest.raises(KeywordError, match=m(f"{who} got batch_size=4 and batch_n=3; "
                                             "batch_size is read as batch_n: give batch_n "
                                             "only")):
        call(batch_size=4, batch_n=3)
    assert torch.equal(before, q.loc.detach()) and model.step_count == 0


@pytest.mark.parametrize("entry", ["eval", "train", "test"])
def test_other_misspellings_keep_the_did_you_mean(entry):
    prior, q = _prior_and_q()
    loss = (Expectation(q, LogProb(q)) - Expectation(q, LogProb(prior))).mean()
    model = Model(loss, distributions=[q])
    call = {"eval": loss.eval, "train": model.train, "test": model.test}[entry]
    for typo in ("batchsize", "batch_sizes", "n_batch"):
        with pytest.raises(KeywordError, match=m(f"unexpected keyword argument {typo!r}")):
            call(**{typo: 4})
    with pytest.raises(KeywordError, match=m('(did you mean "batch_n"?)')):
        call(batch_sise=4)


def test_gan_train_and_test_warn_once_and_read_batch_size_as_batch_n():
    import warnings

    from test_pixyz_compat_adversarial import setup

    from pixyz_pyro.model import GAN

    def run(**kw):
        _, p, _, d = setup()
        model = GAN(p, d, optimizer_params={"lr": 1e-3}, d_optimizer_params={"lr": 1e-3})
        torch.manual_seed(5)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = model.train({"x": torch.rand(8, 4)}, **kw)
            out += model.test({"x": torch.rand(8, 4)}, **kw)
        return out, [str(w.message) for w in caught if w.category is DeprecationWarning]

    with_size, messages = run(batch_size=8)
    with_n, none = run(batch_n=8)
    assert all(torch.equal(a, b) for a, b in zip(with_size, with_n)) and none == []
    assert [t.split(":")[0] for t in messages] == ["GAN.train()", "GAN.test()"]
