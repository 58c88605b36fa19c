"""Structured groups, part 2 (MATH.md §4): hierarchical, Kronecker, lower-triangular Toeplitz and sparse
Cholesky. Exact Fisher information, closure, sampling, FFT paths, backends, the search distribution,
convergence against ``diag`` on problems with each structure, and the structure grammar."""

from __future__ import annotations

import numpy as np
import pytest
from fim_check import assert_exact_natural_gradient, random_element, subalgebra_basis
from group_checks import (
    check_retraction,
    check_sample_whiten_variances,
    check_samples_match_the_distribution,
    h,
    strategy_moved_off_the_identity,
)
from problems import quadratic, rotated_ellipsoid_hessian
from structured_problems import ar_precision, arrow_hessian, kronecker_hessian, sparse_hessian

import es_ngd
from es_ngd.groups import make_group
from es_ngd.groups.base import MatrixGroup
from es_ngd.groups.kronecker import Kronecker
from es_ngd.groups.toeplitz import Toeplitz

BACKENDS = ["numpy", "torch"]
KRON_SHAPE = (2, 3)  # (rows, cols) of x for the kron groups at p = 6: B₁ is 3×3, B₂ is 2×2

# (structure, p): every new group at small p, including the degenerate block sizes
SMALL = [
    ("hier:1,2", 5), ("hier:2,1", 6), ("hier:0,2", 5), ("hier:2,0", 5), ("hier:2,3", 5), ("hier:0,0", 4),
    ("hier-up:1,2", 5), ("hier-up:2,1", 6), ("hier-up:0,3", 5), ("hier-up:3,2", 5),
    ("toeplitz", 5), ("toeplitz", 6),
    ("sparse:2,1", 5), ("sparse:1,3", 5), ("sparse:3,0", 6), ("sparse:0,5", 5),
    ("kron(dense,dense)", 6), ("kron(tril,low:1)", 6), ("kron(diag,dense)", 6),
    ("kron(toeplitz,hier:1,1)", 6), ("kron(sparse:1,1,triu)", 6),
    ("product(dense@2,diag@3)", 5), ("product(kron(tril,tril)@2x2,diag@2)", 6), ("product(up:1@3,hier:1,1@3)", 6),
    ("product(diag@2,diag@3)", 5),
]


def build(structure: str, p: int, backend: str = "numpy") -> MatrixGroup:
    shape = {"shape": KRON_SHAPE} if structure.startswith("kron") else {}
    return make_group(structure, p, backend, **shape)


def _ids(cases: list[tuple[str, int]]) -> list[str]:
    return [f"{structure}-p{p}" for structure, p in cases]


# -- (1) exact Fisher information ------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("structure", "p"), SMALL, ids=_ids(SMALL))
def test_exact_fisher_information(structure: str, p: int, backend: str) -> None:
    assert_exact_natural_gradient(build(structure, p, backend), seed=1)


def test_fisher_check_catches_a_naive_kronecker_split() -> None:
    """Negative control: each factor's own natural direction of ``Gᵏ/p_other`` without removing the
    isotropic part (the scale counted twice, MATH.md §4) is not the natural gradient."""
    group = build("kron(dense,dense)", 6)

    class NaiveSplit(Kronecker):
        def natural_direction(self, z, u, shift=0.0):
            rows, cols = self.shape
            u_rows = (u[:, None] * np.ones((1, rows))).reshape(-1) / rows
            u_cols = (u[:, None] * np.ones((1, cols))).reshape(-1) / cols
            return {**{f"M1.{k}": v for k, v in self.first.natural_direction(self._rows_of_w(z), u_rows,
                                                                             shift).items()},
                    **{f"M2.{k}": v for k, v in self.second.natural_direction(self._columns_of_w(z), u_cols,
                                                                              shift).items()}}

    assert_exact_natural_gradient(group, seed=1)
    with pytest.raises(AssertionError):
        assert_exact_natural_gradient(NaiveSplit(group.first, group.second), seed=1)


def test_fisher_check_catches_toeplitz_weights_that_ignore_the_diagonal() -> None:
    """Negative control: treating m₀ like the other coefficients (weight p instead of 2p) is caught."""

    class WrongWeight(Toeplitz):
        def natural_direction(self, z, u, shift=0.0):
            m = super().natural_direction(z, u, shift)["m"].copy()
            m[0] *= 2.0
            return {"m": m}

    with pytest.raises(AssertionError):
        assert_exact_natural_gradient(WrongWeight(5, make_group("diag", 5).backend), seed=1)


@pytest.mark.parametrize(("structure", "p"), SMALL, ids=_ids(SMALL))
def test_num_parameters_is_the_dimension_of_the_subalgebra(structure: str, p: int) -> None:
    group = build(structure, p)
    assert group.num_parameters() == len(subalgebra_basis(group))


# -- (2) closure and invertibility -------------------------------------------------------------------
CLOSURE = [("hier:2,3", 8), ("hier:0,3", 6), ("hier:3,0", 6), ("hier:3,4", 7), ("hier-up:2,3", 8),
           ("hier-up:3,4", 7), ("toeplitz", 7), ("sparse:3,2", 8), ("sparse:3,0", 6), ("sparse:0,6", 6),
           ("product(tril@3,up:1@3,diag@2)", 8), ("product(dense@4,low:2@4)", 8)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("structure", "p"), CLOSURE, ids=_ids(CLOSURE))
@pytest.mark.parametrize("step", [1e-4, 0.3, -0.9, -5.0])
def test_retraction_is_the_group_product_and_stays_invertible(structure: str, p: int, backend: str,
                                                              step: float) -> None:
    rng = np.random.default_rng(7)
    group = build(structure, p, backend)
    check_retraction(group, random_element(group, rng), rng, step)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("structure", ["kron(dense,dense)", "kron(tril,low:1)", "kron(toeplitz,hier:1,1)"])
def test_kronecker_retraction_is_the_product_of_the_factor_retractions(structure: str, backend: str) -> None:
    """``B₁h(sM₁) ⊗ B₂h(sM₂)`` stays a Kronecker product and agrees with ``B·h(sM)`` up to O(s³)."""
    rng = np.random.default_rng(2)
    group = build(structure, 6, backend)
    bk = group.backend
    factor = random_element(group, rng)
    z, u = bk.asarray(rng.standard_normal((9, 6))), bk.asarray(rng.standard_normal(9))
    direction = group.natural_direction(z, u, 0.2)
    b, m = bk.to_numpy(group.dense(factor)), bk.to_numpy(group.tangent_dense(direction))
    gaps = []
    for step in [-5.0, 0.3, 1e-2, 1e-3]:
        moved = group.retract(factor, direction, step)
        f1, f2 = group._factors(factor)
        m1, m2 = group._tangents(direction)
        by_factor = np.kron(bk.to_numpy(group.first.dense(group.first.retract(f1, m1, step))),
                            bk.to_numpy(group.second.dense(group.second.retract(f2, m2, step))))
        after = bk.to_numpy(group.dense(moved))
        np.testing.assert_allclose(after, by_factor, rtol=1e-12, atol=1e-12 * np.abs(after).max())
        assert group.logdet(moved) == pytest.approx(np.linalg.slogdet(after)[1], rel=1e-9, abs=1e-9)
        gaps.append(np.abs(after - b @ h(step * m)).max())
    assert gaps[3] < 2e-3 * gaps[2]  # third order: a 10× smaller step gives a ~1000× smaller gap


# -- (3) sampling, whitening, variances, condition number, magnitude -------------------------------
# groups whose condition number is exact: no coupling block outside the blocks whose spectrum is used
EXACT_CONDITION = {"kron(dense,dense)", "kron(diag,dense)", "hier:0,0", "sparse:0,5", "sparse:0,6",
                   "product(diag@2,diag@3)"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("structure", "p"), SMALL + CLOSURE, ids=_ids(SMALL + CLOSURE))
def test_sample_whiten_variances_match_dense_algebra(structure: str, p: int, backend: str) -> None:
    rng = np.random.default_rng(3)
    group = build(structure, p, backend)
    bk = group.backend
    factor = random_element(group, rng)
    b, z = check_sample_whiten_variances(group, factor, rng)
    cond = np.linalg.cond(b) ** 2
    estimate = group.condition_number(factor)
    if structure == "toeplitz":
        assert cond * (1 - 1e-9) <= estimate  # documented upper bound
    elif structure in EXACT_CONDITION:
        assert estimate == pytest.approx(cond, rel=1e-8)
    elif "toeplitz" not in structure:  # kron(toeplitz, …) multiplies an upper and a lower bound
        assert estimate <= cond * (1 + 1e-9)  # documented lower bound (the couplings widen the spectrum)
    direction = group.natural_direction(bk.asarray(z), bk.asarray(rng.standard_normal(4)), 0.3)
    spectral = np.linalg.norm(bk.to_numpy(group.tangent_dense(direction)), 2)
    assert spectral <= group.magnitude(direction) * (1 + 1e-12)  # a valid upper bound


def test_kronecker_sampling_is_the_matrix_form_column_major() -> None:
    """``x = vec(W)`` column-major with ``W = B₂⁻ᵀ Z B₁⁻¹`` (B₁ cols×cols, B₂ rows×rows)."""
    rng = np.random.default_rng(4)
    rows, cols = 3, 4
    group = make_group("kron(tril,dense)", rows * cols, shape=(rows, cols))
    factor = random_element(group, rng)
    f1, f2 = group._factors(factor)
    b1, b2 = group.first.dense(f1), group.second.dense(f2)
    assert b1.shape == (cols, cols) and b2.shape == (rows, rows)
    z = rng.standard_normal(rows * cols)
    w = np.linalg.inv(b2).T @ z.reshape(rows, cols, order="F") @ np.linalg.inv(b1)
    np.testing.assert_allclose(group.sample(factor, z[None, :])[0], w.reshape(-1, order="F"), rtol=1e-12)


# -- (4) Toeplitz FFT paths against the dense computation --------------------------------------------
@pytest.mark.parametrize("p", [37, 64])
def test_toeplitz_fft_paths_equal_the_dense_computation(p: int) -> None:
    rng = np.random.default_rng(p)
    group = make_group("toeplitz", p)
    factor = random_element(group, rng)
    b = group.dense(factor)
    binv = np.linalg.inv(b)
    # the maintained inverse series is the first column of B⁻¹
    np.testing.assert_allclose(factor["binv"], binv[:, 0], rtol=1e-10, atol=1e-10 * np.abs(binv).max())
    z = rng.standard_normal((5, p))
    np.testing.assert_allclose(group.sample(factor, z), z @ binv, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(group.whiten(factor, z), z @ b, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(group.variances(factor), np.diag(binv.T @ binv), rtol=1e-10)
    # natural direction: ½(mean diag G − shift) and the means of the subdiagonals of G
    u, shift = rng.standard_normal(5), 0.4
    g = (z * u[:, None]).T @ z
    expected = np.array([np.diagonal(g, -j).mean() for j in range(p)])
    expected[0] = 0.5 * (expected[0] - shift)
    direction = group.natural_direction(z, u, shift)
    np.testing.assert_allclose(direction["m"], expected, rtol=1e-10, atol=1e-12)
    # retraction: B h(sM) by truncated FFT products
    m = group.tangent_dense(direction)
    moved = group.retract(factor, direction, -0.7)
    np.testing.assert_allclose(group.dense(moved), b @ h(-0.7 * m), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(moved["binv"], np.linalg.inv(group.dense(moved))[:, 0], rtol=1e-10, atol=1e-12)
    # magnitude and condition number are upper bounds, within Bernstein's factor 1/(1 − π/8) of the symbol
    assert np.linalg.norm(m, 2) <= group.magnitude(direction)
    assert np.linalg.cond(b) ** 2 <= group.condition_number(factor)


# -- (5) numpy and torch agree ---------------------------------------------------------------------------
@pytest.mark.parametrize(("structure", "p"), [(s, p) for s, p in SMALL if p == 6] + [("hier:1,2", 5)])
def test_numpy_and_torch_backends_agree(structure: str, p: int) -> None:
    hessian = rotated_ellipsoid_hessian(p, 1e2, seed=3)
    options = {"shape": KRON_SHAPE} if structure.startswith("kron") else {}
    runs = [es_ngd.NGDES(np.ones(p), 0.8, structure=structure, seed=5, backend=backend, **options)
            for backend in BACKENDS]
    for _ in range(15):
        asked = [es.ask() for es in runs]
        xs = [es.backend.to_numpy(x) for es, x in zip(runs, asked, strict=True)]
        np.testing.assert_allclose(xs[0], xs[1], rtol=1e-10, atol=1e-12)
        fitness = [float(x @ hessian @ x) for x in xs[0]]
        for es, x in zip(runs, asked, strict=True):
            es.tell(x, fitness)
    np.testing.assert_allclose(runs[1].backend.to_numpy(runs[1].mean), runs[0].mean, rtol=1e-10)
    cov = runs[0].covariance()
    np.testing.assert_allclose(runs[1].covariance(), cov, rtol=1e-9, atol=1e-12 * np.abs(cov).max())


# -- (6) the search distribution -------------------------------------------------------------------------
@pytest.mark.parametrize(("structure", "p"), [("hier:1,2", 6), ("hier-up:2,1", 6), ("toeplitz", 6),
                                              ("sparse:2,2", 6), ("kron(dense,dense)", 6),
                                              ("kron(hier:1,1,low:1)", 6),
                                              ("product(kron(dense,dense)@2x2,up:1@3)", 7)])
def test_sample_covariance_matches_search_distribution(structure: str, p: int) -> None:
    options = {"shape": KRON_SHAPE} if structure.startswith("kron") else {}
    es = strategy_moved_off_the_identity(structure, p, **options)
    assert np.abs(es.covariance() / es.sigma**2 - np.eye(p)).max() > 0.05  # B has moved
    check_samples_match_the_distribution(es)


# -- (7) convergence on problems with each structure, against diag -----------------------------------
# (structure, Hessian, matrix shape of x or None, budget in evaluations). Measured with seed 1 (seeds 2, 3
# within 3 %): hier 19 799, hier-up 19 682, kron 9 674, toeplitz 9 030, sparse 15 041 evaluations. diag
# (SNES) never reaches f < 1e-8 on these: it stops on the condition criterion after 70 000–220 000.
CONVERGENCE = {
    "hier": ("hier:2,3", lambda: arrow_hessian(2, 20, 3, seed=1), None, 30_000),
    "hier-up": ("hier-up:3,2", lambda: arrow_hessian(2, 20, 3, seed=1)[::-1, ::-1], None, 30_000),
    "kron": ("kron(dense,dense)", lambda: kronecker_hessian(5, 6, seed=1), (5, 6), 15_000),
    "toeplitz": ("toeplitz", lambda: ar_precision(30, [1.5, -0.75]), None, 15_000),
    "sparse": ("sparse:10,5", lambda: sparse_hessian(10, 5, seed=1), None, 25_000),
}


@pytest.mark.parametrize("problem", list(CONVERGENCE))
def test_converges_on_its_structure_with_fewer_evaluations_than_diag(problem: str) -> None:
    structure, make_hessian, shape, budget = CONVERGENCE[problem]
    hessian = make_hessian()
    p = len(hessian)
    options = {"shape": shape} if shape else {}
    result = es_ngd.optimize(quadratic(hessian), np.ones(p), 1.0, structure=structure, seed=1, ftarget=1e-8,
                             maxfevals=budget, **options)
    assert result.fbest < 1e-8, (result.fbest, result.stop, result.step_bound_hits)
    assert result.evaluations <= budget
    # diag, blind to the couplings, needs more: it has not reached the target when the budget is spent
    blind = es_ngd.optimize(quadratic(hessian), np.ones(p), 1.0, structure="diag", seed=1, ftarget=1e-8,
                            maxfevals=budget)
    assert blind.fbest > 1e-8 or blind.evaluations > result.evaluations, (blind.evaluations, blind.fbest)


# -- reductions to the core groups --------------------------------------------------------------------
@pytest.mark.parametrize(("structure", "reference"), [("hier:0,0", "diag"), ("hier:3,0", "low:3"),
                                                      ("hier-up:3,0", "up:3"), ("sparse:0,8", "tril")])
def test_reduces_to_a_core_group_step_for_step(structure: str, reference: str) -> None:
    def f(x: np.ndarray) -> float:
        return float(np.sum(np.arange(1, 9) * (x - 0.3) ** 2) + 0.5 * x[0] * x[1])

    # the same rates for both: the defaults are chosen separately per group
    a = es_ngd.NGDES(np.ones(8), 0.7, structure=structure, seed=11, lr_factor=0.1)
    b = es_ngd.NGDES(np.ones(8), 0.7, structure=reference, seed=11, lr_factor=0.1)
    for _ in range(40):
        xa, xb = a.ask(), b.ask()
        np.testing.assert_allclose(xa, xb, rtol=1e-11, atol=1e-13)
        fa = [f(x) for x in xa]
        a.tell(xa, fa)
        b.tell(xb, fa)
    np.testing.assert_allclose(a.covariance(), b.covariance(), rtol=1e-9)


# -- the structure grammar --------------------------------------------------------------------------------
@pytest.mark.parametrize(("structure", "message"), [
    ("hier:1", "takes 2 integer"),
    ("hier:1,2,3", "takes 2 integer"),
    ("hier:8,5", r"K1 \+ K2 <= p"),
    ("hier-up:-1,2", "0 <= K1"),
    ("toeplitz:3", "takes 0 integer"),
    ("sparse:3,3", r"2·N1 \+ N2 = p"),
    ("sparse:4", "takes 2 integer"),
    ("kron", r"in parentheses, written 'kron\(F1,F2\)'"),
    ("kron:2", "in parentheses"),
    ("kron(tril,diag", "unbalanced parentheses"),
    ("kron(tril,diag))", "unbalanced parentheses"),
    ("kron)tril,diag(", "unbalanced parentheses"),
    ("kron(tril)", "takes 2 factor structures"),
    ("kron(tril,diag,dense)", "takes 2 factor structures"),
    ("kron(,diag)", "takes 2 factor structures"),
    ("kron(bogus,diag)", "factor 'bogus': unknown structure"),
    ("kron(up:x,diag)", "must be integers"),
    ("kron(kron(diag,diag),diag)", "cannot itself be a kron"),
    ("diag(3)", "only kron takes parenthesised factors"),
    ("kron(up:4,diag)", "0 <= K <= p"),  # up:4 on the 3×3 factor
])
def test_malformed_structures_are_clear_errors(structure: str, message: str) -> None:
    options = {"shape": (4, 3)} if structure.startswith("kron") else {}
    with pytest.raises(ValueError, match=message):
        es_ngd.NGDES(np.zeros(12), 1.0, structure=structure, **options)


def test_kron_needs_a_matrix_shape() -> None:
    with pytest.raises(ValueError, match=r"needs the matrix shape of x: pass a matrix-shaped x0 .* shape="):
        es_ngd.NGDES(np.zeros(6), 1.0, structure="kron(dense,dense)")
    with pytest.raises(ValueError, match=r"rows·cols = 8, but x has p = 6"):
        es_ngd.NGDES(np.zeros(6), 1.0, structure="kron(dense,dense)", shape=(2, 4))
    with pytest.raises(ValueError, match="two positive integers"):
        make_group("kron(dense,dense)", 6, shape=(6,))
    with pytest.raises(ValueError, match="applies only to kron"):
        es_ngd.NGDES(np.zeros((2, 3)), 1.0, structure="diag")
    with pytest.raises(ValueError, match="applies only to kron"):
        make_group("up:1", 6, shape=(2, 3))


def test_kron_takes_its_shape_from_a_matrix_x0_and_factors_with_commas() -> None:
    es = es_ngd.NGDES(np.ones((2, 3)), 1.0, structure="kron(hier:1,1,sparse:1,0)", seed=0)
    assert isinstance(es.group, Kronecker)
    assert es.group.shape == (2, 3)
    assert es.group.first.structure == "hier:1,1" and es.group.first.dim == 3
    assert es.group.second.structure == "sparse:1,0" and es.group.second.dim == 2
    assert es.group.structure == "kron(hier:1,1,sparse:1,0)"
    assert es.ask().shape == (es.popsize, 6)
