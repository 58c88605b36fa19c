"""Step-size controllers (es_ngd/step_size.py) and the rank-one term (es_ngd/evolution_path.py).

Their formulas against hand computations, TPA's test pair in the population, the exact
natural-gradient mode, and what a checkpoint of the previous format does.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

import es_ngd
from es_ngd import checkpoint
from es_ngd.evolution_path import RankOnePath
from es_ngd.shaping import xnes_weights
from es_ngd.step_size import CSA, TPA, Generation, expected_chi_norm, make_step_size
from es_ngd.strategy import natural_gradient_step


def generation(g_delta, utilities, fitness=None, has_test_pair=False, selected=None) -> Generation:
    return Generation(g_delta=np.asarray(g_delta, dtype=float), selected_step=selected,
                      utilities=np.asarray(utilities, dtype=float),
                      fitness=np.asarray(utilities if fitness is None else fitness, dtype=float),
                      has_test_pair=has_test_pair, mean_before=np.zeros(len(g_delta)))


def test_csa_constants_are_cma_es_ones_with_the_damping_scaled() -> None:
    p, n = 10, 10
    w = xnes_weights(n)
    mu_eff = 1 / (w**2).sum()
    csa = CSA(p, n)
    assert csa.c_sigma == pytest.approx((mu_eff + 2) / (p + mu_eff + 5))
    assert csa.damping == pytest.approx(0.7 * (1 + 2 * max(0, math.sqrt((mu_eff - 1) / (p + 1)) - 1) + csa.c_sigma))
    # E‖N(0, I)‖ against Monte Carlo
    z = np.random.default_rng(0).standard_normal((200_000, p))
    assert expected_chi_norm(p) == pytest.approx(np.linalg.norm(z, axis=1).mean(), rel=2e-3)


def test_csa_path_and_sigma_follow_the_formula() -> None:
    p, n = 5, 8
    es = es_ngd.NGDES(np.ones(p), 0.7, popsize=n, seed=3)
    csa = es.step_size
    z = es.ask_population().noise()
    rng = np.random.default_rng(3)
    u = es.shaper(rng.standard_normal(n))
    path0 = rng.standard_normal(p)
    es.state = dataclasses.replace(es.state, step_size={"path": path0})
    new, _ = natural_gradient_step(es.state, es.group, z, u, es.rates, csa)
    sigma, state = new.sigma, new.step_size
    c = csa.c_sigma
    path = (1 - c) * path0 + math.sqrt(c * (2 - c)) / math.sqrt((u**2).sum()) * (u @ z)
    np.testing.assert_allclose(state["path"], path, rtol=1e-14)
    expected = 0.7 * math.exp(min(1.0, c / csa.damping * (np.linalg.norm(path) / expected_chi_norm(p) - 1)))
    trace = float(u @ (z * z).sum(1)) / p  # tr(G)/p: σ also takes its natural gradient, ½ η_σ tr(G)/p
    assert sigma == pytest.approx(expected * math.exp(0.5 * es.rates.sigma * trace), rel=1e-14)


@pytest.mark.parametrize("step_size", ["csa", "tpa", "xnes"])
def test_sigma_takes_the_trace_part_of_the_natural_gradient_under_every_controller(step_size) -> None:
    """log σ moves by ½ η_σ tr(G)/p on top of the controller's own term; with "xnes" that is all."""
    p, n = 6, 8
    es = es_ngd.NGDES(np.ones(p), 0.5, structure="diag", seed=2, step_size=step_size, popsize=n)
    z = es.ask_population().noise()
    u = es.shaper(np.random.default_rng(7).standard_normal(n))
    trace = float(u @ (z * z).sum(1)) / p
    assert abs(trace) > 1e-3  # the term is not trivially zero here
    new, _ = natural_gradient_step(es.state, es.group, z, u, es.rates, es.step_size)
    own, _ = es.step_size.update(es.state.step_size, 0.5, generation(u @ z, u, selected=(u @ z) / np.sqrt(u @ u)))
    assert new.sigma == pytest.approx(own * math.exp(0.5 * es.rates.sigma * trace), rel=1e-13)
    if step_size == "xnes":
        assert own == 0.5


def test_csa_is_unbiased_under_random_selection() -> None:
    """With fitness independent of the points, log σ performs a random walk without drift."""
    p, n = 10, 10
    es = es_ngd.NGDES(np.zeros(p), 1.0, structure="diag", seed=5, popsize=n)
    rng = np.random.default_rng(6)
    logs = []
    for _ in range(3000):
        X = es.ask()
        es.tell(X, rng.standard_normal(n))
        logs.append(math.log(es.sigma))
    # drift per generation well below the ±c/d per generation a biased path would cause
    drift = (logs[-1] - logs[500]) / 2500
    assert abs(drift) < 0.2 * es.step_size.c_sigma / es.step_size.damping


def test_the_paths_take_rank_based_steps_whatever_the_shaping() -> None:
    """With raw shaping the path still gets the xNES-utility step of the ranks (not the raw utilities')."""
    p, n = 5, 8
    es = es_ngd.NGDES(np.ones(p), 0.7, popsize=n, seed=3, shaping="raw")
    z = es.ask_population().noise()
    f = np.random.default_rng(4).standard_normal(n) ** 3
    u_raw = es.shaper(f)
    new, _ = natural_gradient_step(es.state, es.group, z, u_raw, es.rates, es.step_size, fitness=f)
    r = es_ngd.shaping.xnes_utilities(f)
    c = es.step_size.c_sigma
    path = math.sqrt(c * (2 - c)) / math.sqrt((r**2).sum()) * (r @ z)
    np.testing.assert_allclose(new.step_size["path"], path, rtol=1e-13)
    # and the run converges where the raw utilities' path made σ stall (5-D sphere, seed 1: f = 4.5e-7)
    result = es_ngd.optimize(lambda x: float(x @ x), np.ones(6), 0.5, shaping="raw", seed=1, ftarget=1e-8,
                             maxfevals=5000)
    assert result.fbest < 1e-8, result.stop


def test_csa_ignores_a_generation_without_information() -> None:
    csa = CSA(4, 6)
    state = {"path": np.ones(4)}
    sigma, new = csa.update(state, 2.0, generation(np.zeros(4), np.zeros(6), selected=None))
    assert sigma == 2.0 and new is state


def test_tpa_rank_difference_and_smoothing_follow_pycma() -> None:
    p, n = 6, 9
    tpa = TPA(p, n)
    assert tpa.damping == pytest.approx(0.7 + 2 * math.log(p) + 2 * math.log(max(1, n - p)))
    f = np.array([0.1, 5.0, 3.0, 0.0, 4.0, 2.0, 6.0, 7.0, 8.0])  # the point ahead (0) beats the one behind (1)
    r = (np.sum(f < f[1]) - np.sum(f < f[0])) / (n - 1)
    assert r > 0
    sigma, state = tpa.update({"s": 0.2, "previous_mean": None}, 1.5, generation(np.zeros(p), np.zeros(n), f, True))
    s = 0.7 * 0.2 + 0.3 * math.sqrt(r)
    assert state["s"] == pytest.approx(s, rel=1e-14)
    assert sigma == pytest.approx(1.5 * math.exp(s / tpa.damping), rel=1e-14)
    # without a test pair (the first generation) σ and s stay
    sigma, state = tpa.update({"s": 0.2, "previous_mean": None}, 1.5, generation(np.zeros(p), np.zeros(n), f, False))
    assert (sigma, state["s"]) == (1.5, 0.2)


@pytest.mark.parametrize("mirrored", [False, True])
def test_tpa_test_pair_lies_along_the_last_mean_shift_and_regenerates(mirrored: bool) -> None:
    p = 7
    es = es_ngd.NGDES(np.ones(p), 0.5, structure="up:2", seed=2, step_size="tpa", mirrored=mirrored, popsize=10)
    first = es.ask_population()
    assert first.test_direction is None  # no mean shift yet
    es.tell(first.candidates(), [float((x**2).sum()) for x in first.candidates()])
    es.tell(es.ask(), [float((x**2).sum()) for x in es._pending[2]])
    before = es.mean.copy()
    es.tell(es.ask(), [float((x**2).sum()) for x in es._pending[2]])
    shift = es.mean - before
    population = es.ask_population()
    z = population.noise()
    x = population.candidates()
    # candidates 0 and 1 are μ ± (a normal vector's length) along the last mean shift
    for row, sign in ((0, 1.0), (1, -1.0)):
        d = x[row] - es.mean
        cos = d @ shift / (np.linalg.norm(d) * np.linalg.norm(shift))
        assert cos == pytest.approx(sign, abs=1e-12)
    assert np.linalg.norm(z[0]) == pytest.approx(np.linalg.norm(z[1]), rel=1e-14)
    # any subset regenerates bit for bit (what a Ray worker does)
    for rows in ([1], [0], [1, 5], [3, 0, 9]):
        assert np.array_equal(population.candidates(rows), x[rows])
        assert np.array_equal(population.noise(rows), z[rows])
    # the other rows are the ordinary noise of this ask
    plain = dataclasses.replace(population, test_direction=None, cache=None)
    assert np.array_equal(plain.noise()[2:], z[2:])


def test_exact_mode_moves_b_by_the_natural_gradient_of_the_trace_free_part() -> None:
    """With rank_one=False the B step is exactly C ⊙ κ(G − tr(G)/p·I) (the direction the Fisher tests check),
    under every controller; the rank-one term changes it."""
    p, n = 6, 8
    for step_size in ("csa", "tpa", "xnes"):
        es = es_ngd.NGDES(np.ones(p), 0.5, structure="up:2", seed=4, step_size=step_size, popsize=n)
        population = es.ask_population()
        z = population.noise()
        u = es.shaper(np.arange(n, dtype=float)[::-1])
        new, _ = natural_gradient_step(es.state, es.group, z, u, es.rates, es.step_size)
        trace = float(u @ (z * z).sum(1)) / p
        direction = es.group.natural_direction(z, u, trace)
        expected = es.group.retract(es.state.factor, direction, -es.rates.factor)
        for key in expected:
            np.testing.assert_allclose(new.factor[key], expected[key], rtol=1e-13, atol=1e-15)
        with_path, _ = natural_gradient_step(dataclasses.replace(es.state, evolution_path=np.zeros(p)), es.group,
                                             z, u, es.rates, es.step_size, rank_one=RankOnePath(p, n))
        assert not np.allclose(with_path.factor["A"], new.factor["A"])


def test_rank_one_term_adds_c1_times_the_path_outer_product() -> None:
    """For dense B the rank-one tangent is ½(c₁/η_B)(p_c p_cᵀ − ‖p_c‖²/p·I) in the whitened frame."""
    p, n = 5, 7
    group = es_ngd.make_group("dense", p)
    factor = group.identity(1.3)
    path = np.random.default_rng(1).standard_normal(p)
    g = np.random.default_rng(2).standard_normal(p)
    term = RankOnePath(p, n)
    tangent, new_path = term.step(path, group, factor, g, 0.1)
    pz = (1 - term.c_c) * (path @ factor["B"]) + term.path_weight * g
    expected = 0.5 * (term.c_1 / 0.1) * (np.outer(pz, pz) - (pz @ pz) / p * np.eye(p))
    np.testing.assert_allclose(tangent["M"], expected, rtol=1e-12)
    np.testing.assert_allclose(new_path, group.sample(factor, pz[None])[0], rtol=1e-14)


def test_rank_one_rate_counts_the_groups_free_entries() -> None:
    """c₁ = 2/((n + 1.3)² + μ_eff) with n(n+1)/2 = the group's free entries: CMA-ES's c₁ for dense B, larger
    for groups with fewer entries, and equal for groups with equal counts (so the reductions hold)."""
    p, n = 12, 10
    mu_eff = 1.0 / float((xnes_weights(n) ** 2).sum())

    def c1(structure: str) -> float:
        return es_ngd.NGDES(np.zeros(p), 1.0, structure=structure, popsize=n).rank_one.c_1

    assert c1("dense") == 2.0 / ((p + 1.3) ** 2 + mu_eff)  # bit for bit: 8P + 1 = (2p + 1)² is exact
    n_diag = (math.sqrt(8 * p + 1) - 1) / 2
    assert c1("diag") == pytest.approx(2.0 / ((n_diag + 1.3) ** 2 + mu_eff), rel=1e-15)
    assert c1("dense") < c1("up:2") < c1("diag")
    assert c1("up:0") == c1("diag") and c1(f"up:{p}") == c1("dense") == c1("tril")


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="step_size must be one of"):
        es_ngd.NGDES(np.zeros(3), 1.0, step_size="cma")
    with pytest.raises(ValueError, match="rank_one must be True or False"):
        es_ngd.NGDES(np.zeros(3), 1.0, rank_one="yes")
    with pytest.raises(ValueError, match="unknown step_size"):
        make_step_size("none", 3, 6)


def test_a_format_1_checkpoint_loads_with_a_fresh_controller_and_a_warning(tmp_path) -> None:
    es = es_ngd.NGDES(np.ones(4), 0.5, structure="diag", seed=3)
    for _ in range(5):
        X = es.ask()
        es.tell(X, [float((x**2).sum()) for x in X])
    sd = es.state_dict()
    sd["format_version"] = 1  # what es_ngd 0.1 wrote: no controller state, no step_size option
    del sd["state"]["step_size"], sd["state"]["evolution_path"]
    del sd["options"]["step_size"], sd["options"]["rank_one"]
    path = checkpoint.write(sd, tmp_path / "old.npz")
    with pytest.warns(UserWarning, match="no step-size controller state"):
        loaded = es_ngd.NGDES.load(path)
    assert loaded.options.step_size == "csa"
    assert np.array_equal(loaded.state.step_size["path"], np.zeros(4))  # reset
    assert np.array_equal(loaded.mean, es.mean) and loaded.sigma == es.sigma
    assert loaded.state.iterations == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = loaded.ask()
        loaded.tell(X, [float((x**2).sum()) for x in X])


def test_a_checkpoint_from_another_controller_is_refused(tmp_path) -> None:
    es = es_ngd.NGDES(np.ones(4), 0.5, seed=3, step_size="tpa")
    sd = es.state_dict()
    other = es_ngd.NGDES(np.ones(4), 0.5, seed=3, step_size="csa")
    with pytest.raises(es_ngd.CheckpointError, match="step-size state"):
        other.load_state_dict(sd)
    assert other.state.step_size["path"].shape == (4,)  # untouched


@pytest.mark.parametrize("structure", ["dense", "diag", "up:2", "kron(dense,dense)"])
def test_the_default_sigma_rate_is_snes_under_csa_and_tpa_and_eta_b_under_xnes(structure) -> None:
    p = 36
    shape = {"shape": (6, 6)} if structure.startswith("kron") else {}

    def rates(**options):
        return es_ngd.NGDES(np.ones(p), 0.5, structure=structure, **shape, **options).rates

    for step_size in ("csa", "tpa"):
        assert rates(step_size=step_size).sigma == (3 + math.log(p)) / (5 * math.sqrt(p))
        # lr_factor moves B's rate only; lr_sigma sets η_σ
        assert rates(step_size=step_size, lr_factor=1e-3).sigma == rates(step_size=step_size).sigma
        assert rates(step_size=step_size, lr_sigma=0.05).sigma == 0.05
    xnes = es_ngd.NGDES(np.ones(p), 0.5, structure=structure, step_size="xnes", **shape)
    assert xnes.rates.sigma == xnes.rates.factor == xnes.group.default_learning_rate  # xNES's η_σ = η_B
    assert rates(step_size="xnes", lr_factor=1e-3).sigma == 1e-3


def test_a_format_2_checkpoint_goes_on_with_the_sigma_rate_it_was_saved_with(tmp_path) -> None:
    """es_ngd 0.2's unset lr_sigma meant η_B: a run it saved resumes exactly as 0.2 would have continued it."""
    def run(es, generations):
        for _ in range(generations):
            X = es.ask()
            es.tell(X, (X**2).sum(1) + 10 * X[:, 0] ** 2)

    p = 8
    eta_b = es_ngd.NGDES(np.ones(p), 0.5, structure="dense").rates.factor
    as_in_0_2 = es_ngd.NGDES(np.ones(p), 0.5, structure="dense", seed=4, lr_sigma=eta_b)
    run(as_in_0_2, 6)
    sd = as_in_0_2.state_dict()
    sd["format_version"] = 2
    sd["options"]["lr_sigma"] = None  # what 0.2 stored for the default
    path = checkpoint.write(sd, tmp_path / "v2.npz")
    with pytest.warns(UserWarning, match="predates es_ngd 0.3's default η_σ"):
        loaded = es_ngd.NGDES.load(path)
    assert loaded.rates.sigma == eta_b and loaded.options.lr_sigma == eta_b
    # resume() into a strategy built with the defaults does the same
    resumed = es_ngd.NGDES(np.ones(p), 0.5, structure="dense", seed=4)
    with pytest.warns(UserWarning, match="predates es_ngd 0.3's default η_σ"):
        assert checkpoint.resume(resumed, path)
    run(as_in_0_2, 10)
    run(loaded, 10)
    run(resumed, 10)
    assert loaded.sigma == resumed.sigma == as_in_0_2.sigma
    np.testing.assert_array_equal(loaded.mean, as_in_0_2.mean)
    np.testing.assert_array_equal(resumed.mean, as_in_0_2.mean)
    # saved again, it is a format-3 file with the rate written out, and loads without a warning
    loaded.save(tmp_path / "v3.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = es_ngd.NGDES.load(tmp_path / "v3.npz")
    assert again.rates.sigma == eta_b
    # a format-3 file with the default loads with the new default
    fresh = es_ngd.NGDES(np.ones(p), 0.5, structure="dense", seed=4)
    fresh.save(tmp_path / "new.npz")
    assert es_ngd.NGDES.load(tmp_path / "new.npz").rates.sigma == fresh.rates.sigma != eta_b
