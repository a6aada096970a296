"""Pixyz's distribution-side API: p.graph, DistributionBase, sample(sample_mean=True),
the documented print order, its error texts and the NumPy masks."""
import numpy as np
import pytest
import torch

from pixyz_pyro.dist import (
    Categorical,
    Deterministic,
    DistGraph,
    DistributionBase,
    MixtureModel,
    Normal,
    RelaxedBernoulli,
)
from pixyz_pyro.errors import VariableError
from pixyz_pyro.flows.coupling import channel_wise_mask, checkerboard_mask


def chain():
    return (Normal(loc="y", scale=1., var=["x"], cond_var=["y"])
            * Normal(loc=0., scale=1., var=["y"]))


# --- p.graph -------------------------------------------------------------------------------
def test_graph_name_follows_the_distribution():
    p = Normal(loc=0., scale=1., var=["x"], name="p")
    g = p.graph
    assert isinstance(g, DistGraph) and g.name == "p"
    p.name = "q"
    assert g.name == "q"
    assert "q(x)" in str(g)


def test_set_option_sets_the_joint_draw_shape():
    p = chain()
    p.graph.set_option(dict(batch_n=4, sample_shape=(2, 3)), ["y"])
    s = p.sample()
    assert s["y"].shape == (2, 3, 4) and s["x"].shape == (2, 3, 4)
    # x is drawn around each y (loc = y): same draws, shifted by unit noise
    assert torch.all((s["x"] - s["y"]).abs() < 10)
    assert p.graph.options() == {"global": {}, "p(y)": {"batch_n": 4, "sample_shape": (2, 3)}}
    p.graph.set_option({}, ["y"])
    assert p.sample()["y"].shape == (1,)


def test_factor_option_is_writable_through_the_view():
    p = chain()
    p.graph.set_option(dict(batch_n=5), ["y"])
    (factor,) = p.graph._factors_from_variable("y")
    assert factor.option == {"batch_n": 5} and factor.dist.prob_text == "p(y)"
    factor.option = {}
    assert p.sample()["y"].shape == (1,)


def test_disagreeing_options_are_an_error():
    p = Normal(loc=0., scale=1., var=["x"]) * Normal(loc=0., scale=1., var=["y"])
    p.graph.set_option(dict(batch_n=2), ["x"])
    p.graph.set_option(dict(batch_n=3), ["y"])
    with pytest.raises(ValueError, match="the factors' batch_n options disagree .2 and 3.; "
                                         "a joint is drawn in one pass"):
        p.sample()


def test_set_option_on_an_unknown_variable():
    with pytest.raises(ValueError, match="set_option: p\\(x,y\\) has no variable 'w'"):
        chain().graph.set_option({"batch_n": 2}, ["w"])


def test_visible_graph_is_a_networkx_digraph():
    nx = pytest.importorskip("networkx")
    p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * Normal(loc=0., scale=1., var=["z"]) \
        * Normal(loc=0., scale=1., var=["w"])
    g = p.graph.visible_graph()
    assert isinstance(g, nx.DiGraph)
    assert set(g.edges()) == {("$z$", "$x$")} and "$w$" in g.nodes
    d = p.graph.visible_graph(dotmode=True)
    assert set(d.edges()) == {("z", "x")} and d.nodes["x"]["texlbl"] == "$x$"
    assert list(nx.topological_sort(d))[-1] in ("x", "w")


def test_marginalize_list_and_distribution_lookup():
    p = chain().marginalize_var(["y"])
    assert p.graph.marginalize_list == {"y"}
    assert p.graph.distribution("y").prob_text == "p(y)"
    assert set(p.graph.visible_graph(dotmode=True).nodes) == {"x", "y"}


# --- DistributionBase and the documented print order ----------------------------------------
def test_distribution_base_prints_like_pixyz():
    a = DistributionBase(var=["x"], cond_var=["z"])
    text = str(a)
    assert text.startswith("Distribution:\n  p(x|z)\nNetwork architecture:\n  DistributionBase(")
    assert "var=['x'], cond_var=['z'], input_var=['z'], features_shape=torch.Size([])" in text


def test_independent_factors_print_in_the_documented_order():
    a = DistributionBase(var=["x"], cond_var=["z"])
    b = DistributionBase(var=["y"], cond_var=["z"])
    p = a * b
    assert p.prob_joint_factorized_and_text == "p(x,y|z) = p(x|z)p(y|z)"
    net = str(p).split("Network architecture:\n")[1]
    assert net.index("p(y|z):") < net.index("p(x|z):")


def test_dependent_factors_print_parent_first():
    p = DistributionBase(var=["x"], cond_var=["z"]) * DistributionBase(var=["z"], cond_var=["y"])
    assert p.prob_joint_factorized_and_text == "p(x,z|y) = p(x|z)p(z|y)"


# --- sample(sample_mean=True) ----------------------------------------------------------------
def test_sample_mean_is_plugged_in_ancestrally():
    p = Normal(loc="x", scale=1., var=["y"], cond_var=["x"]) * Normal(loc=2., scale=1., var=["x"])
    s = p.sample(sample_mean=True)
    assert torch.equal(s["x"], torch.tensor([2.])) and torch.equal(s["y"], torch.tensor([2.]))
    assert set(p.sample({"c": torch.ones(1)}, sample_mean=True)) == {"x", "y", "c"}
    assert set(p.sample({"c": torch.ones(1)}, sample_mean=True, return_all=False)) == {"x", "y"}


def test_mixture_sample_mean_takes_the_most_probable_component():
    comps = [Normal(loc=0., scale=1.), Normal(loc=1., scale=1.)]
    p = MixtureModel(comps, Categorical(probs=torch.tensor([1 / 3, 2 / 3])))
    assert torch.equal(p.sample(sample_mean=True)["x"], torch.ones(1))
    # ... which is not the mixture's mean
    torch.testing.assert_close(p.sample_mean(), torch.tensor([2 / 3]))


def test_relaxed_sample_mean_is_not_defined():
    rb = RelaxedBernoulli(var=["x"], temperature=torch.tensor(0.5), probs=torch.tensor([0.5, 0.8]))
    with pytest.raises(NotImplementedError, match="draws from RelaxedBernoulli, which has no "
                                                  "closed-form mean"):
        rb.sample(sample_mean=True)


def test_unknown_sample_options_are_accepted():
    p = Normal(loc=0., scale=1.)
    assert set(p.sample(unknown_opt=None)) == {"x"}


# --- errors as Pixyz documents them ------------------------------------------------------------
def test_marginalizing_every_variable_has_pixyz_message_and_our_cause():
    with pytest.raises(ValueError) as info:
        Normal(loc=0., scale=1., var=["x"]).marginalize_var(["x"])
    assert str(info.value) == ("marginalize_list has unknown variables or it has all of "
                               "variables of `p`.")
    assert "cannot marginalize every variable of p(x)" in str(info.value.__cause__)


def test_deterministic_log_prob_message():
    class Double(Deterministic):
        def __init__(self):
            super().__init__(var=["h"], cond_var=["x"], name="f")

        def forward(self, x):
            return {"h": 2 * x}

    f = Double()
    with pytest.raises(NotImplementedError) as info:
        f.log_prob().eval({"h": torch.ones(1, 1), "x": torch.ones(1, 1)})
    assert str(info.value) == "Log probability of deterministic distribution is not defined."
    assert "f(h|x) is deterministic" in str(info.value.__cause__)


def test_replace_var_does_not_read_the_old_name():
    p = Normal(loc="y", scale=1., var=["x"], cond_var=["y"]).replace_var(y="z")
    with pytest.raises(VariableError):
        p.sample_mean({"y": torch.ones(1)})
    assert torch.equal(p.sample_mean({"z": torch.ones(1)}), torch.ones(1))


# --- mixtures ------------------------------------------------------------------------------------
def test_mixture_hidden_variable_may_share_the_observed_name_until_used():
    p = MixtureModel([Normal(loc=0., scale=1.), Normal(loc=1., scale=1.)],
                     Categorical(probs=torch.tensor([0.5, 0.5])))
    torch.testing.assert_close(p.get_log_prob({"x": torch.zeros(1)}),
                               torch.logsumexp(torch.tensor([-0.9189385, -1.4189385]), 0)
                               .reshape(1) + torch.log(torch.tensor(0.5)))
    with pytest.raises(VariableError, match="posterior\\(\\) needs the hidden variable"):
        p.posterior()


def test_posterior_log_density_given_only_x_is_the_responsibility_table():
    comps = [Normal(loc=-1., scale=1., var=["x"]), Normal(loc=1., scale=1., var=["x"])]
    p = MixtureModel(comps, Categorical(probs=torch.tensor([0.5, 0.5]), var=["z"]))
    post = p.posterior()
    x = torch.tensor([[0.], [1.], [-2.]])
    table = post.get_log_prob({"x": x})
    assert table.shape == (2, 3) and post.density_input_var == ["x"]
    # closed form: p(z=1|x) = sigmoid(log N(x;1,1) - log N(x;-1,1)) = sigmoid(2x)
    torch.testing.assert_close(table.exp()[1], torch.sigmoid(2 * x[:, 0]))
    torch.testing.assert_close(table.exp().sum(0), torch.ones(3))


def test_mixture_declares_no_features_of_its_own():
    comps = [Normal(loc=torch.zeros(2), scale=torch.ones(2), var=["x"]) for _ in range(2)]
    p = MixtureModel(comps, Categorical(probs=torch.tensor([0.5, 0.5]), var=["z"]))
    assert p.features_shape == torch.Size([])
    assert p.sample(batch_n=3)["x"].shape == (3, 2)


# --- masks ---------------------------------------------------------------------------------------
def test_public_masks_are_float32_numpy():
    m = checkerboard_mask(3, 2, inverse_mask=True)
    assert isinstance(m, np.ndarray) and m.dtype == np.float32
    np.testing.assert_array_equal(m, [[0, 1], [1, 0], [0, 1]])
    np.testing.assert_array_equal(channel_wise_mask(5), [1, 1, 0, 0, 0])


# --- renamed joints print their factorization ---------------------------------------------------
def three():
    x = Normal(var=["x"], loc=torch.zeros(1), scale=torch.ones(1))
    y = Normal(var=["y"], loc=torch.zeros(1), scale=torch.ones(1))
    z = Normal(var=["z"], cond_var=["y"], loc="y", scale=torch.ones(1))
    return x * y * z


def test_renamed_marginal_prints_its_renamed_factorization():
    p = three().marginalize_var(["y"]).replace_var(z="w", x="z").replace_var(z="a")
    assert p.var == ["w", "a"]  # renamed variables come last, in the order renamed
    assert p.prob_joint_factorized_and_text == "p(w,a) = \\int p(a)p(w|y)p(y)dy"
    net = str(p).split("Network architecture:\n")[1]
    heads = [line.strip() for line in net.splitlines() if line.strip().endswith(":")]
    assert heads == ["p(y):", "p(w|y) -> p(z|y):", "p(a) -> p(x):"]
    s = p.sample()
    assert set(s) == {"w", "a"}


def test_renaming_onto_a_marginalized_name_is_refused():
    with pytest.raises(ValueError) as info:
        three().marginalize_var(["y"]).replace_var(z="y")
    assert str(info.value) == "['y', 'z'] are conflicted after replaced."
    assert isinstance(info.value.__cause__, VariableError)


def test_repr_of_a_joint_lists_its_atomic_factors():
    p = three().marginalize_var(["y"]).replace_var(z="w")
    text = repr(p)
    assert text.startswith("DistGraph(\n  (0): Normal(\n")
    assert text.count("): Normal(") == 3 and text.endswith("\n)")
    assert repr(Normal(loc=0., scale=1.)).startswith("Normal(")
