"""The structured second-order method (es_ngd.newton, MATH.md §6): the Hessian direction of every group
that has one, the step, invariance under the group, and bad input."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import es_ngd
from es_ngd import newton
from es_ngd.groups import make_group
from es_ngd.groups.base import MatrixGroup

#: structure → Hessian-vector products per direction at p = 7
HESSIAN_STRUCTURES = {"dense": 7, "diag": 0, "tril": 7, "triu": 7, "up:2": 2, "low:2": 2, "up:0": 0, "low:7": 7,
                      "hier:2,3": 5, "hier-up:2,3": 5, "hier:1,1": 2, "hier-up:1,1": 2, "hier:0,2": 2,
                      "hier-up:3,0": 3}
P = 7


def moved_factor(group: MatrixGroup, rng: np.random.Generator, scale: float = 1.3) -> dict:
    """A factor of the group away from the identity: three retractions along random directions."""
    factor = group.identity(scale)
    for _ in range(3):
        z = rng.standard_normal((20, group.dim))
        factor = group.retract(factor, group.natural_direction(z, rng.standard_normal(20), 0.3), 0.3)
    return factor


def random_symmetric(rng: np.random.Generator, p: int, shift: float = -2.0) -> np.ndarray:
    a = rng.standard_normal((p, p))
    return a @ a.T + shift * np.eye(p)  # indefinite for shift < 0: the direction must not assume H ≻ 0


def quadratic(hess: np.ndarray, center: np.ndarray) -> dict:
    return {"f": lambda x: 0.5 * float((x - center) @ hess @ (x - center)), "grad": lambda x: hess @ (x - center),
            "hvp": lambda x, v: hess @ v, "hess_diag": lambda x: np.diag(hess).copy()}


def rosenbrock(p: int) -> dict:
    def grad(x: np.ndarray) -> np.ndarray:
        r, g = x[1:] - x[:-1] ** 2, np.zeros_like(x)
        g[:-1] += -400.0 * r * x[:-1] - 2.0 * (1.0 - x[:-1])
        g[1:] += 200.0 * r
        return g

    def hessian(x: np.ndarray) -> np.ndarray:
        d = np.zeros_like(x)
        d[:-1] += 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
        d[1:] += 200.0
        return np.diag(d) + np.diag(-400.0 * x[:-1], 1) + np.diag(-400.0 * x[:-1], -1)

    return {"f": lambda x: float((100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()), "grad": grad,
            "hvp": lambda x, v: hessian(x) @ v, "hess_diag": lambda x: np.diag(hessian(x)).copy(), "hessian": hessian}


@pytest.mark.parametrize("structure", sorted(HESSIAN_STRUCTURES))
def test_direction_from_products_is_the_dense_direction(structure: str) -> None:
    """``hessian_direction`` from k (or k₁+k₂, or p) products and diag H equals ``C⊙κ(B⁻¹HB⁻ᵀ − I)`` formed
    densely: the ES direction ``natural_direction`` of the square root ``Σ λᵢ vᵢvᵢᵀ = B⁻¹HB⁻ᵀ``."""
    rng = np.random.default_rng(3)
    group = make_group(structure, P)
    factor = moved_factor(group, rng)
    hess = random_symmetric(rng, P)
    b_inv = np.linalg.inv(group.dense(factor))
    eigenvalues, vectors = np.linalg.eigh(b_inv @ hess @ b_inv.T)
    expected = group.tangent_dense(group.natural_direction(vectors.T.copy(), eigenvalues, 1.0))
    products: list[int] = []

    def hvp(v: np.ndarray) -> np.ndarray:
        products.append(v.shape[0])
        return v @ hess

    got = group.tangent_dense(group.hessian_direction(factor, hvp, lambda: np.diag(hess).copy()))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    assert sum(products) == HESSIAN_STRUCTURES[structure]
    y = rng.standard_normal((3, P))
    np.testing.assert_allclose(group.solve(factor, y), y @ b_inv.T, rtol=1e-9, atol=1e-12)  # rows B⁻¹yᵢ


@pytest.mark.parametrize("structure", ["kron(dense,dense)", "toeplitz", "sparse:2,3"])
def test_groups_without_hessian_access_say_so(structure: str) -> None:
    options = {"shape": (3, 3)} if structure.startswith("kron") else {}
    group = make_group(structure, 9 if structure.startswith("kron") else P, **options)
    with pytest.raises(NotImplementedError, match="structures that have it: 'dense', 'diag'"):
        group.hessian_direction(group.identity(), lambda v: v, lambda: np.ones(group.dim))
    problem = quadratic(np.eye(group.dim), np.zeros(group.dim))
    with pytest.raises(ValueError, match=re.escape(f"structure {group.structure!r} has no Hessian access")):
        newton.Newton(problem["f"], np.ones(group.dim), structure=group, grad=problem["grad"], hvp=problem["hvp"])


@pytest.mark.parametrize("structure", ["dense", "tril", "up:2", "low:2", "hier:2,1", "hier-up:1,2", "diag"])
def test_step_keeps_b_in_its_group(structure: str) -> None:
    rng = np.random.default_rng(4)
    group = make_group(structure, P)
    pattern = np.abs(group.dense(moved_factor(group, rng))) > 0
    problem = rosenbrock(P)
    opt = newton.Newton(problem["f"], np.full(P, 2.0), structure=structure, grad=problem["grad"], hvp=problem["hvp"],
                        hess_diag=problem["hess_diag"])
    for _ in range(5):
        before = group.dense(opt.state.factor)
        opt.step()
        after = group.dense(opt.state.factor)
        assert not (np.abs(after)[~pattern] > 0).any()
        assert np.linalg.matrix_rank(after) == P and not np.allclose(after, before)
        assert np.isfinite(group.logdet(opt.state.factor))


def test_dense_converges_on_a_convex_quadratic_in_few_iterations() -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal((12, 12))
    hess = a @ a.T + 0.1 * np.eye(12)  # condition number in the thousands
    center = rng.standard_normal(12)
    result = newton.minimize(**quadratic(hess, center), x0=np.zeros(12), structure="dense", ftarget=1e-20)
    assert result.stop.keys() == {"ftarget"} and result.fbest <= 1e-20
    assert result.iterations <= 12
    assert result.extra["gradients"] == result.iterations and result.extra["hvps"] >= 12 * result.iterations
    np.testing.assert_allclose(result.xbest, center, atol=1e-9)


@pytest.mark.parametrize("structure", ["dense", "tril", "up:2", "low:2", "hier:1,2", "hier-up:2,1", "diag"])
def test_iterates_are_invariant_under_the_group(structure: str) -> None:
    """For ``f̃(y) = f(Rᵀy)`` with ``R`` in the group, started at ``y₀ = R⁻ᵀx₀`` with ``B̃₀ = R B₀``, the
    iterates are ``xₜ = Rᵀyₜ`` (MATH.md §6): the method sees only ``B⁻¹HB⁻ᵀ`` and ``B⁻¹∇f``."""
    rng = np.random.default_rng(6)
    group = make_group(structure, P)
    r = group.dense(moved_factor(group, rng, scale=1.0))
    problem = rosenbrock(P)
    scale, x0 = 30.0, np.full(P, 1.8)
    transformed = {"f": lambda y: problem["f"](r.T @ y), "grad": lambda y: r @ problem["grad"](r.T @ y),
                   "hvp": lambda y, v: r @ (problem["hessian"](r.T @ y) @ (r.T @ v)),
                   "hess_diag": lambda y: np.diag(r @ problem["hessian"](r.T @ y) @ r.T).copy()}
    start = group.identity(scale)
    r_factor = moved_factor(group, np.random.default_rng(6), scale=scale)  # = scale·R, the same draws as r
    np.testing.assert_allclose(group.dense(r_factor), scale * r, rtol=1e-12)
    plain = newton.Newton(x0=x0, structure=structure, factor=start, **{k: problem[k] for k in transformed})
    moved = newton.Newton(x0=np.linalg.solve(r.T, x0), structure=structure, factor=r_factor, **transformed)
    for _ in range(8):
        plain.step()
        moved.step()
        np.testing.assert_allclose(r.T @ moved.state.mean, plain.state.mean, rtol=1e-7, atol=1e-9)
        assert moved.state.f == pytest.approx(plain.state.f, rel=1e-7, abs=1e-12)
    assert plain.state.f < problem["f"](x0) / 10  # it moved


def test_bad_derivatives_are_errors_that_leave_the_state_untouched() -> None:
    problem = rosenbrock(P)
    calls = {"n": 0}

    def flaky_grad(x: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        return {2: np.ones(P + 1), 3: np.full(P, np.nan)}.get(calls["n"], problem["grad"](x))

    opt = newton.Newton(problem["f"], np.full(P, 2.0), structure="hier:1,1", grad=flaky_grad, hvp=problem["hvp"],
                        hess_diag=problem["hess_diag"])
    opt.step()
    state = opt.state
    with pytest.raises(ValueError, match=r"grad must return an array of shape \(7,\), got shape \(8,\)"):
        opt.step()
    with pytest.raises(ValueError, match="grad returned 7 NaN or inf entries"):
        opt.step()
    assert opt.state is state and opt.stop() == {}
    opt.step()  # and it goes on from there
    assert opt.state.iterations == 2

    def short_hvp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return problem["hvp"](x, v)[:-1]

    opt = newton.Newton(problem["f"], np.full(P, 2.0), structure="up:1", grad=problem["grad"], hvp=short_hvp,
                        hess_diag=problem["hess_diag"])
    state = opt.state
    with pytest.raises(ValueError, match=r"hvp must return an array of shape \(7,\), got shape \(6,\)"):
        opt.step()
    assert opt.state is state
    bad_diag = newton.Newton(problem["f"], np.full(P, 2.0), structure="diag", grad=problem["grad"],
                             hvp=problem["hvp"], hess_diag=lambda x: np.ones(3), scale=1.0)
    with pytest.raises(ValueError, match="hess_diag must return an array of shape"):
        bad_diag.step()
    with pytest.raises(TypeError, match="unknown option"):
        newton.minimize(problem["f"], np.ones(P), structure="dense", grad=problem["grad"], hvp=problem["hvp"], beta=1)
    with pytest.raises(ValueError, match="order must be one of"):
        newton.Newton(problem["f"], np.ones(P), structure="dense", grad=problem["grad"], hvp=problem["hvp"],
                      order="sideways")
    with pytest.raises(TypeError, match="pass both grad and hvp"):
        newton.Newton(problem["f"], np.ones(P), structure="dense", grad=problem["grad"])


def test_minimize_reaches_machine_precision_on_rosenbrock_and_reports_a_result() -> None:
    problem = rosenbrock(20)
    result = newton.minimize(problem["f"], np.full(20, 10.0), structure="hier:1,1", grad=problem["grad"],
                             hvp=problem["hvp"], hess_diag=problem["hess_diag"])
    assert isinstance(result, es_ngd.Result)
    assert result.fbest < 1e-20 and set(result.stop) & {"tolx", "tolfun"}
    assert result.iterations < 300 and result.evaluations == result.iterations + 1
    assert result.extra["hvps"] == 2 * result.iterations  # k₁ + k₂ products, the diagonal given
    np.testing.assert_allclose(result.xbest, np.ones(20), atol=1e-9)


def test_order_and_mean_step_bound() -> None:
    problem = rosenbrock(P)
    common = {"grad": problem["grad"], "hvp": problem["hvp"], "hess_diag": problem["hess_diag"], "scale": 30.0}
    x0 = np.full(P, 3.0)
    after = newton.Newton(problem["f"], x0, structure="up:1", order="after", **common).step()
    before = newton.Newton(problem["f"], x0, structure="up:1", order="before", **common).step()
    assert not np.allclose(after.mean, before.mean)
    bounded = newton.Newton(problem["f"], x0, structure="up:1", max_mean_step=0.5, **common)
    group, start = bounded.group, bounded.state.factor
    state = bounded.step()
    step_length = np.linalg.norm(group.whiten(state.factor, (state.mean - x0)[None, :]))  # ‖Bᵀ Δμ‖ (order "after")
    assert state.mean_bound_hits == 1 and step_length == pytest.approx(0.5)
    assert not np.allclose(state.factor["D"], start["D"])


def test_diagonal_from_products_exact_and_hutchinson() -> None:
    """Without hess_diag: p unit products give the exact diagonal; Hutchinson's estimate is exact for a
    diagonal Hessian (vᵢ² = 1) and unbiased otherwise, at ``probes`` products per iteration."""
    rng = np.random.default_rng(7)
    hess = random_symmetric(rng, P, shift=P)
    problem = quadratic(hess, rng.standard_normal(P))
    given = newton.Newton(x0=np.zeros(P), structure="low:1", scale=2.0, **problem).step()
    problem.pop("hess_diag")
    exact = newton.Newton(x0=np.zeros(P), structure="low:1", scale=2.0, **problem).step()
    np.testing.assert_allclose(exact.mean, given.mean, rtol=1e-12)
    assert exact.hvps == given.hvps + P
    oracle = newton.Oracle(dim=P, diagonal_mode="hutchinson", probes=4000, **problem)
    from es_ngd.newton.oracle import Counter

    counter = Counter()
    estimate = oracle.diagonal(np.zeros(P), counter, 0)()
    assert counter.hvps == 4000
    np.testing.assert_allclose(estimate, np.diag(hess), atol=6 * np.sqrt((hess**2).sum(1).max() / 4000))
    diagonal = quadratic(np.diag(np.arange(1.0, P + 1)), np.zeros(P))
    diagonal.pop("hess_diag")
    one_probe = newton.Oracle(dim=P, diagonal_mode="hutchinson", probes=1, **diagonal)
    np.testing.assert_allclose(one_probe.diagonal(np.ones(P), Counter(), 3)(), np.arange(1.0, P + 1))


def test_autodiff_from_a_torch_function() -> None:
    torch = pytest.importorskip("torch")
    problem = rosenbrock(P)
    x = np.random.default_rng(8).uniform(-1, 2, P)
    from es_ngd.newton.autodiff import autodiff

    value, grad, hvp = autodiff(lambda t: (100 * (t[1:] - t[:-1] ** 2) ** 2
                                                          + (1 - t[:-1]) ** 2).sum())
    assert value(x) == pytest.approx(problem["f"](x), rel=1e-12)
    np.testing.assert_allclose(grad(x), problem["grad"](x), rtol=1e-10)
    v = np.eye(P)[:3]
    np.testing.assert_allclose(hvp(x, v), v @ problem["hessian"](x), rtol=1e-10, atol=1e-10)
    result = newton.minimize(lambda t: ((t - 1.0) ** 2 * torch.arange(1.0, 4.0, dtype=t.dtype)).sum(),
                             np.zeros(3), structure="dense", ftarget=1e-20)
    assert result.fbest <= 1e-20


def test_import_needs_no_torch() -> None:
    code = "import sys, es_ngd, es_ngd.newton; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
