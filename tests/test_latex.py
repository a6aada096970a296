r"""Golden formulas: what ``print(loss)`` shows, compared with Pixyz 0.3.3.

Every string below was printed by Pixyz 0.3.3 for the same model (a scratch script with
``pixyz.distributions``/``pixyz.losses`` in place of our imports).  One difference is
kept on purpose and asserted as an algebraic identity instead:

* the M2 joint ``p_u * prior`` prints ``p(x_{u},z|y_{u})`` here and ``p(z,x_{u}|y_{u})``
  in Pixyz 0.3.3 (Pixyz orders a joint's variables by its internal graph after
  ``replace_var``; we list them by factor, as it does for ``p * prior``).

The networks do not change a formula, so the distributions here bind their parameters
to variables instead of hiding networks.
"""
import torch

from pixyz_pyro.dist import Bernoulli, Deterministic, EmpiricalDistribution, Normal
from pixyz_pyro.dist import RelaxedCategorical as RelaxedCategorical_
from pixyz_pyro.loss import (
    ELBO,
    MMD,
    NLL,
    AdversarialJensenShannon,
    AdversarialKullbackLeibler,
    AdversarialWassersteinDistance,
    CrossEntropy,
    Entropy,
    Expectation,
    IterativeLoss,
    KullbackLeibler,
    LogProb,
    LossExpectation,
    MaxLoss,
    MinLoss,
    Parameter,
    Prob,
    WassersteinDistance,
)
from pixyz_pyro.loss.latex import to_sympy


def vae():
    q = Normal(loc="x", scale=1.0, var=["z"], cond_var=["x"], name="q")
    p = Bernoulli(probs="z", var=["x"], cond_var=["z"], name="p")
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[64], name="p_prior")
    return p, q, prior


VAE = (r"mean \left(D_{KL} \left[q(z|x)||p_{prior}(z) \right] - \mathbb{E}_{q(z|x)} "
       r"\left[\log p(x|z) \right] \right)")


def test_vae():
    p, q, prior = vae()
    reconst = -Expectation(q, LogProb(p))
    kl = KullbackLeibler(q, prior)
    assert str((kl + reconst).mean()) == VAE
    assert str((KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()) == VAE
    assert str((kl - p.log_prob().expectation(q)).mean()) == VAE
    assert (kl + reconst).mean().loss_text == VAE
    assert (kl + reconst).mean()._repr_latex_() == f"${VAE}$"


def test_beta_vae():
    p, q, prior = vae()
    beta = Parameter("beta")
    expect = (r"mean \left(D_{KL} \left[q(z|x)||p_{prior}(z) \right] \beta - "
              r"\mathbb{E}_{q(z|x)} \left[\log p(x|z) \right] \right)")
    assert str((beta * KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()) == expect
    assert str((KullbackLeibler(q, prior) * beta - Expectation(q, LogProb(p))).mean()) == expect


def test_elbo_forms():
    p, q, prior = vae()
    assert str(ELBO(p * prior, q)) == (r"\mathbb{E}_{q(z|x)} \left[\log p(x,z) - \log q(z|x) "
                                       r"\right]")
    assert str(-ELBO(p * prior, q).mean()) == (
        r"- mean \left(\mathbb{E}_{q(z|x)} \left[\log p(x,z) - \log q(z|x) \right] \right)")


# --- M2 (the paper's Figure 3) ------------------------------------------------------------------

def m2():
    q = Normal(loc="x", scale=1.0, var=["z"], cond_var=["x", "y"], name="q")
    p = Bernoulli(probs="z", var=["x"], cond_var=["z", "y"], name="p")
    f = RelaxedCategorical_(probs="x", var=["y"], cond_var=["x"], name="p")
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[64], name="p_{prior}")
    p_joint = p * prior
    _q_u = q.replace_var(x="x_u", y="y_u")
    p_u = p.replace_var(x="x_u", y="y_u")
    f_u = f.replace_var(x="x_u", y="y_u")
    q_u = _q_u * f_u
    p_joint_u = p_u * prior
    return p_joint, q, f, p_joint_u, q_u


def test_m2_distributions():
    p_joint, q, f, p_joint_u, q_u = m2()
    assert str(p_joint.prob_joint_factorized_and_text) == "p(x,z|y) = p(x|z,y)p_{prior}(z)"
    assert q_u.prob_joint_factorized_and_text == (
        "q(z,y_{u}|x_{u}) = q(z|x_{u},y_{u})p(y_{u}|x_{u})")
    # Pixyz 0.3.3: p(z,x_{u}|y_{u}) = p(x_{u}|z,y_{u})p_{prior}(z) (variable order differs)
    assert p_joint_u.prob_joint_factorized_and_text == (
        "p(x_{u},z|y_{u}) = p(x_{u}|z,y_{u})p_{prior}(z)")
    assert set(p_joint_u.var) == {"z", "x_u"} and p_joint_u.cond_var == ["y_u"]


M2_OURS = (r"- \mathbb{E}_{q(z|x,y)} \left[\log p(x,z|y) - \log q(z|x,y) \right] + sum "
           r"\left(- 0.1 \log p(y|x) \right) - sum \left(\mathbb{E}_{q(z,y_{u}|x_{u})} "
           r"\left[\log p(x_{u},z|y_{u}) - \log q(z,y_{u}|x_{u}) \right] \right)")
M2_PIXYZ = (r"- \mathbb{E}_{q(z|x,y)} \left[\log p(x,z|y) - \log q(z|x,y) \right] + sum "
            r"\left(- 0.1 \log p(y|x) \right) - sum \left(\mathbb{E}_{q(z,y_{u}|x_{u})} "
            r"\left[\log p(z,x_{u}|y_{u}) - \log q(z,y_{u}|x_{u}) \right] \right)")


def test_m2_loss_of_figure_3():
    p_joint, q, f, p_joint_u, q_u = m2()
    elbo_u = ELBO(p_joint_u, q_u)
    elbo = ELBO(p_joint, q)
    nll = NLL(f)
    loss_cls = -(elbo - (0.1 * nll).sum()) - elbo_u.sum()
    assert str(loss_cls) == M2_OURS
    # the same formula as Pixyz's up to the order of the joint's variables
    assert str(loss_cls).replace("p(x_{u},z|y_{u})", "p(z,x_{u}|y_{u})") == M2_PIXYZ
    # and algebraically: moving the terms around prints the same thing
    assert str(-elbo_u.sum() - elbo + (0.1 * nll).sum()) == M2_OURS


def test_m2_loss_of_the_pixyz_notebook():
    p_joint, q, f, p_joint_u, q_u = m2()
    loss_cls = -ELBO(p_joint_u, q_u).mean() - ELBO(p_joint, q).mean() + (
        470.0 * -f.log_prob()).mean()
    assert str(loss_cls) == (
        r"mean \left(- 470.0 \log p(y|x) \right) - mean \left(\mathbb{E}_{q(z,y_{u}|x_{u})} "
        r"\left[\log p(x_{u},z|y_{u}) - \log q(z,y_{u}|x_{u}) \right] \right) - mean "
        r"\left(\mathbb{E}_{q(z|x,y)} \left[\log p(x,z|y) - \log q(z|x,y) \right] \right)")


# --- TD-VAE (the paper's Figure 3) ----------------------------------------------------------

def tdvae(seq_len=16):
    p_b1 = Normal(loc="b_t1", scale=1.0, var=["z_t1"], cond_var=["b_t1"], name="p_b")
    p_b2 = p_b1.replace_var(b_t1="b_t2", z_t1="z_t2")
    p_t = Normal(loc="z_t1", scale=1.0, var=["z_t2"], cond_var=["z_t1"], name="p_t")
    q = Normal(loc="z_t2", scale=1.0, var=["z_t1"], cond_var=["z_t2", "b_t1", "b_t2"],
               name="q")
    p_d = Bernoulli(probs="z_t2", var=["x_t2"], cond_var=["z_t2"], name="p_d")

    class BeliefStateNet(Deterministic):
        def __init__(self):
            super().__init__(cond_var=["x"], var=["b"])

    class SliceStep(Deterministic):
        def __init__(self):
            super().__init__(cond_var=["t", "x", "b"], var=["x_t2", "b_t1", "b_t2"], name="f")

    belief_state_net, slice_step = BeliefStateNet(), SliceStep()
    kl = KullbackLeibler(q, p_b1)
    reconst = LossExpectation(q, NLL(p_t) + NLL(p_d) - NLL(p_b2))
    step_loss = LossExpectation(p_b2, reconst + kl)
    _loss = IterativeLoss(step_loss, max_iter=seq_len - 1, series_var=["x", "b"],
                          slice_step=slice_step)
    loss = LossExpectation(belief_state_net, _loss).mean()
    return step_loss, _loss, loss


TDVAE_STEP = (
    r"\mathbb{E}_{p_{b}(z_{t2}|b_{t2})} \left[D_{KL} \left[q(z_{t1}|z_{t2},b_{t1},b_{t2})||"
    r"p_{b}(z_{t1}|b_{t1}) \right] + \mathbb{E}_{q(z_{t1}|z_{t2},b_{t1},b_{t2})} \left[\log "
    r"p_{b}(z_{t2}|b_{t2}) - \log p_{d}(x_{t2}|z_{t2}) - \log p_{t}(z_{t2}|z_{t1}) \right] "
    r"\right]")


def test_tdvae_loss_of_figure_3():
    step_loss, _loss, loss = tdvae(seq_len=4)
    assert str(step_loss) == TDVAE_STEP
    inner = (r"\sum_{t=0}^{2} \mathbb{E}_{f(x_{t2},b_{t1},b_{t2}|t,x,b)} \left["
             + TDVAE_STEP + r" \right]")
    assert str(_loss) == inner
    assert str(loss) == r"mean \left(\mathbb{E}_{p(b|x)} \left[" + inner + r" \right] \right)"
    assert loss.input_var == ["x"]  # t comes from the slice step, not the user


# --- the rest of the catalogue ------------------------------------------------------------------

def test_catalogue_formulas_match_pixyz():
    p, q, prior = vae()
    p_ = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
    cases = {
        Entropy(q): r"H \left[ {q(z|x)} \right]",
        Entropy(q, analytical=False): r"- \mathbb{E}_{q(z|x)} \left[\log q(z|x) \right]",
        CrossEntropy(q, prior): r"- \mathbb{E}_{q(z|x)} \left[\log p_{prior}(z) \right]",
        KullbackLeibler(q, prior, analytical=False):
            r"\mathbb{E}_{q(z|x)} \left[- \log p_{prior}(z) + \log q(z|x) \right]",
        MMD(q, prior): r"D_{MMD^2} \left[q(z|x)||p_{prior}(z) \right]",
        WassersteinDistance(q, prior): r"W^{upper} \left(q(z|x), p_{prior}(z) \right)",
        MinLoss(LogProb(p_), LogProb(q)): r"min \left(\log p(x|z), \log q(z|x)\right)",
        MaxLoss(LogProb(p_), LogProb(q)): r"max \left(\log p(x|z), \log q(z|x)\right)",
        Prob(p_): r"p(x|z)",
        NLL(p_): r"- \log p(x|z)",
        -p_.log_prob().expectation(q): r"- \mathbb{E}_{q(z|x)} \left[\log p(x|z) \right]",
        LogProb(p_).abs(): r"|\log p(x|z)|",
        LogProb(p_).detach(): r"detach \left(\log p(x|z) \right)",
        1 - LogProb(p_): r"1 - \log p(x|z)",
        LogProb(p_) + 1.5: r"\log p(x|z) + 1.5",
        LogProb(p_) / 2: r"\frac{\log p(x|z)}{2}",
        0.5 * LogProb(p_): r"0.5 \log p(x|z)",
    }
    for loss, text in cases.items():
        assert str(loss) == text


def test_adversarial_formulas_match_pixyz():
    class D(Deterministic):
        def __init__(self):
            super().__init__(var=["t"], cond_var=["x"], name="d")

    gen = (Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
           * Normal(loc=0.0, scale=1.0, var=["z"], name="p_prior")).marginalize_var("z")
    data = EmpiricalDistribution(["x"])
    assert data.prob_text == "p_{data}(x)"
    assert gen.prob_joint_factorized_and_text == r"p(x) = \int p(x|z)p_{prior}(z)dz"
    assert str(AdversarialJensenShannon(data, gen, D())) == (
        r"mean(D_{JS}^{Adv} \left[p_{data}(x)||p(x) \right])")
    assert str(AdversarialKullbackLeibler(data, gen, D())) == (
        r"mean(D_{KL}^{Adv} \left[p_{data}(x)||p(x) \right])")
    assert str(AdversarialWassersteinDistance(data, gen, D())) == (
        r"mean(W^{Adv} \left(p_{data}(x), p(x) \right))")


def test_iterative_formulas_match_pixyz():
    class Rec(Deterministic):
        def __init__(self):
            super().__init__(var=["h"], cond_var=["x", "z", "h_prev"], name="f")

    dec = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z", "h_prev"])
    enc = Normal(loc="x", scale=1.0, var=["z"], cond_var=["x", "h_prev"], name="q")
    step = LogProb(dec).expectation(enc * Rec()).mean()
    text = (r"mean \left(\mathbb{E}_{q(z,h|x,h_{prev})} \left[\log p(x|z,h_{prev}) \right] "
            r"\right)")
    assert str(step) == text
    assert str(IterativeLoss(step, series_var=["x"], update_value={"h": "h_prev"})) == (
        r"\sum_{t=0}^{t_{max} - 1} " + text)
    assert str(IterativeLoss(step, max_iter=5, series_var=["x"],
                             update_value={"h": "h_prev"})) == r"\sum_{t=0}^{4} " + text


def test_distribution_texts():
    p, q, prior = vae()
    assert prior.prob_text == "p_{prior}(z)"
    assert (p * prior).prob_joint_factorized_and_text == "p(x,z) = p(x|z)p_{prior}(z)"
    assert Normal(loc=0.0, scale=1.0, var=["z_t1"], name="q1").prob_text == "q_{1}(z_{t1})"
    assert Normal(loc=0.0, scale=1.0, var=["x"], name="beta").prob_text == r"\beta(x)"
    assert p.replace_var(z="h_prev").prob_text == "p(x|h_{prev})"


def test_equal_formulas_are_equal_sympy_expressions():
    """Printing goes through real sympy expressions, so algebra is visible to sympy."""
    p, q, prior = vae()
    a, b = KullbackLeibler(q, prior), Expectation(q, LogProb(p))
    assert to_sympy(a - b) == to_sympy(-(b - a))
    assert to_sympy(2 * a) == to_sympy(a + a)
    assert (to_sympy(a + b) - to_sympy(b) - to_sympy(a)) == 0
