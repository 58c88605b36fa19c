"""The structured benchmark problems (es_ngd.bench.structured) and ``es-ngd bench --suite structured``.

Each problem's Hessian at its optimum, measured by finite differences at small p, has the pattern its
documentation claims (the pattern that makes its fitting group able to represent it); the minimum is
0 at x_opt; instances are reproducible; the fitting structures can be built; and a tiny run writes
its table, JSON, CSV and plots.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cma")
pytest.importorskip("rich")
pytest.importorskip("matplotlib")

from es_ngd.bench.cli import add_arguments, make_config
from es_ngd.bench.runner import RunSpec, run_one
from es_ngd.bench.structured import (
    ARROW_K1,
    ARROW_K2,
    LOW_RANK,
    STRUCTURED,
    fitting_structures,
    make_structured_problem,
    matrix_shape,
    sparse_sizes,
)
from es_ngd.cli import main
from es_ngd.groups import make_group

P = 12  # small enough for a finite-difference Hessian, large enough for every block to be there


def fd_hessian(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central second differences, all p² entries in one vectorised call of ``f``."""
    p = len(x)
    steps = np.eye(p) * h
    signs = [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    points = np.array([x + a * steps[i] + b * steps[j] for i in range(p) for j in range(p) for a, b in signs])
    v = f(points).reshape(p, p, 4)
    return (v[..., 0] - v[..., 1] - v[..., 2] + v[..., 3]) / (4 * h * h)


def hessian(name: str, dim: int = P) -> np.ndarray:
    problem = make_structured_problem(name, dim, instance=1)
    H = fd_hessian(problem.evaluate, problem.evaluate.x_opt)
    return (H + H.T) / 2


def is_zero(block: np.ndarray, scale: float, tol: float = 1e-6) -> bool:
    return bool(np.all(np.abs(block) <= tol * scale))


def dense_where(block: np.ndarray, scale: float) -> bool:
    """Every entry clearly nonzero: the pattern is really there, not just allowed."""
    return bool(np.all(np.abs(block) > 1e-9 * scale))


# -- the claimed Hessian patterns ---------------------------------------------------------------------

def check_arrow(H: np.ndarray) -> None:
    """``hier:K1,K2``: the Cholesky factor has the group's pattern (its middle block is diagonal), and
    eliminating the head leaves a diagonal middle bordered by the dense tail."""
    k1, k2, scale = ARROW_K1, ARROW_K2, np.abs(H).max()
    L = np.linalg.cholesky(H)
    mid = slice(k1, P - k2)
    assert is_zero(np.tril(L[mid, mid], -1), scale)
    assert dense_where(H[:k1, :], scale) and dense_where(H[-k2:, :], scale)  # the arrow's dense rows
    schur = H[k1:, k1:] - H[k1:, :k1] @ np.linalg.solve(H[:k1, :k1], H[:k1, k1:])
    middle = schur[: P - k1 - k2, : P - k1 - k2]
    assert is_zero(middle - np.diag(np.diag(middle)), scale)
    assert not is_zero(H[mid, mid] - np.diag(np.diag(H[mid, mid])), scale)  # the head couples the middle


def check_kron(H: np.ndarray) -> None:
    """``B ⊗ A`` for column-major vec: Van Loan's rearrangement of the blocks has rank one."""
    rows, cols = matrix_shape(P)
    blocks = H.reshape(cols, rows, cols, rows).transpose(0, 2, 1, 3).reshape(cols * cols, rows * rows)
    singular = np.linalg.svd(blocks, compute_uv=False)
    assert singular[1] <= 1e-5 * singular[0]  # finite differences of a non-quadratic: ~1e-7
    assert not is_zero(H - np.diag(np.diag(H)), np.abs(H).max())  # not separable


def check_toeplitz(H: np.ndarray) -> None:
    """Banded (AR(2): bandwidth 2) and its Cholesky factor is a lower-triangular Toeplitz matrix, i.e. an
    element of the ``toeplitz`` group; ``H`` itself is Toeplitz except its first 2 rows and columns."""
    scale, k = np.abs(H).max(), 2
    band = np.abs(np.subtract.outer(np.arange(P), np.arange(P))) > k
    assert is_zero(H[band], scale) and dense_where(H[~band], scale)
    L = np.linalg.cholesky(H)
    assert np.allclose(L[1:, 1:], L[:-1, :-1], atol=1e-6 * np.abs(L).max())
    assert np.allclose(H[k + 1:, k + 1:], H[k:-1, k:-1], atol=1e-6 * scale)


def check_sparse(H: np.ndarray) -> None:
    """The Cholesky factor has the ``sparse:N1,N2`` pattern ``[[D1, 0, 0], [A, T, 0], [D2, 0, D3]]``."""
    n1, n2 = sparse_sizes(P)
    L = np.linalg.cholesky(H)
    allowed = np.zeros((P, P), dtype=bool)
    allowed[np.arange(P), np.arange(P)] = True
    allowed[n1:n1 + n2, :n1 + n2] = np.tril(np.ones((n2, n1 + n2)), n1).astype(bool)
    allowed[n1 + n2 + np.arange(n1), np.arange(n1)] = True
    assert is_zero(L[~allowed], np.abs(L).max())
    assert dense_where(L[allowed], np.abs(L).max())


def check_low_precision(H: np.ndarray) -> None:
    """``low:K``: ``H = diag(0_K, d) + VVᵀ`` (rank K), i.e. its Schur complement on the last p − K
    coordinates is diagonal (and its Cholesky factor has the group's diagonal lower-right block)."""
    k, scale = LOW_RANK, np.abs(H).max()
    schur = H[k:, k:] - H[k:, :k] @ np.linalg.solve(H[:k, :k], H[:k, k:])
    assert is_zero(schur - np.diag(np.diag(schur)), scale)
    assert is_zero(np.tril(np.linalg.cholesky(H)[k:, k:], -1), scale)
    assert not is_zero(H[k:, k:] - np.diag(np.diag(H[k:, k:])), scale)  # dense: the rank-K term


def check_low_covariance(H: np.ndarray) -> None:
    """``up:K``: the precision is an arrow (dense first K rows and columns around a diagonal), so the
    covariance ``H⁻¹`` is ``diag(0_K, δ) + WWᵀ`` (rank K): its Schur complement is diagonal."""
    k, scale = LOW_RANK, np.abs(H).max()
    assert is_zero(H[k:, k:] - np.diag(np.diag(H[k:, k:])), scale)
    assert dense_where(H[:k, :], scale)
    cov = np.linalg.inv(H)
    schur = cov[k:, k:] - cov[k:, :k] @ np.linalg.solve(cov[:k, :k], cov[:k, k:])
    assert is_zero(schur - np.diag(np.diag(schur)), np.abs(cov).max())


PATTERNS = {
    "arrow": check_arrow, "arrow-rosenbrock": check_arrow, "kron-quadratic": check_kron,
    "kron-logistic": check_kron, "ar-toeplitz": check_toeplitz, "sparse-cholesky": check_sparse,
    "lowrank-precision": check_low_precision, "lowrank-covariance": check_low_covariance,
}


def test_every_problem_has_a_pattern_check() -> None:
    assert set(PATTERNS) == set(STRUCTURED)


@pytest.mark.parametrize("name", list(PATTERNS))
def test_hessian_at_the_optimum_has_the_claimed_pattern(name: str) -> None:
    H = hessian(name)
    assert np.all(np.linalg.eigvalsh(H) > 0)  # a strict minimum
    PATTERNS[name](H)


@pytest.mark.parametrize("name", ["arrow", "kron-quadratic", "ar-toeplitz", "sparse-cholesky", "lowrank-precision",
                                  "lowrank-covariance"])
def test_quadratics_are_two_b_b_transpose_of_their_factor(name: str) -> None:
    """The fast ``apply`` agrees with the documented dense factor: ``H = 2BBᵀ``."""
    factor = make_structured_problem(name, P, 1).evaluate.factor
    B = factor.dense_for(P) if hasattr(factor, "dense_for") else factor.dense()
    np.testing.assert_allclose(hessian(name), 2 * B @ B.T, atol=1e-6 * np.abs(B @ B.T).max())


@pytest.mark.parametrize("name", list(STRUCTURED))
def test_minimum_zero_at_x_opt_and_positive_elsewhere(name: str) -> None:
    problem = make_structured_problem(name, P, instance=2)
    x_opt = problem.evaluate.x_opt
    assert problem.evaluate(x_opt[None, :])[0] == 0.0
    rng = np.random.default_rng(0)
    away = x_opt + rng.standard_normal((50, P)) * np.logspace(-4, 1, 50)[:, None]
    assert np.all(problem.evaluate(away) > 0)
    assert problem.evaluate(problem.x0[None, :])[0] > 1.0  # the start is far from the target
    assert np.all(np.abs(x_opt) <= 3.0) and np.all(np.abs(problem.x0) <= 4.0)


@pytest.mark.parametrize("name", list(STRUCTURED))
def test_instances_are_reproducible_and_distinct(name: str) -> None:
    points = np.random.default_rng(1).uniform(-4, 4, (5, P))
    first, again = make_structured_problem(name, P, 3), make_structured_problem(name, P, 3)
    np.testing.assert_array_equal(first.x0, again.x0)
    np.testing.assert_array_equal(first.evaluate(points), again.evaluate(points))
    other = make_structured_problem(name, P, 4)
    assert not np.array_equal(first.evaluate(points), other.evaluate(points))


@pytest.mark.parametrize("dim", [P, 100, 1000])
@pytest.mark.parametrize("name", list(STRUCTURED))
def test_fitting_structures_can_be_built(name: str, dim: int) -> None:
    problem = make_structured_problem(name, dim, 1) if dim <= 100 else None
    for structure in fitting_structures(name, dim):
        shape = {"shape": matrix_shape(dim)} if structure.startswith("kron") else {}
        assert make_group(structure, dim, **shape).dim == dim
        if problem is not None:
            assert (problem.shape is not None) == bool(shape)


def test_dimensions_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="does not factor"):
        make_structured_problem("kron-quadratic", 13, 1)
    with pytest.raises(ValueError, match="needs p >= 6"):
        make_structured_problem("arrow", 5, 1)
    with pytest.raises(ValueError, match="unknown structured problem"):
        make_structured_problem("arow", 12, 1)


def test_a_kron_run_gets_the_matrix_shape_and_records_time_to_target() -> None:
    spec = RunSpec(solver="ngd:kron(dense,dense)", suite="structured", function="kron-quadratic", dim=6,
                   instance=1, seed=1, budget=6000, target=1e-3, sigma0=2.0)
    record = run_one(spec)
    assert record.success and record.kind == "structured", record.stop_reasons
    assert 0 < record.seconds_to_target <= record.wall_seconds
    assert len(record.history_seconds) == len(record.history)
    assert record.history_seconds == sorted(record.history_seconds)


def test_a_time_limit_stops_a_run_like_the_budget() -> None:
    spec = RunSpec(solver="cma", suite="structured", function="arrow", dim=30, instance=1, seed=1, budget=10**7,
                   target=1e-30, sigma0=2.0, max_seconds=0.3)
    record = run_one(spec)
    assert record.stop_reasons == ["time"] and 0.3 <= record.wall_seconds < 3 and not record.success


def test_wall_time_columns_and_the_bound_where_only_es_ngd_reaches_the_target() -> None:
    from es_ngd.bench.report import format_ratio, format_seconds_to_target, summarise
    from es_ngd.bench.runner import RunRecord

    def record(solver: str, evaluations: int, seconds: float, success: bool) -> RunRecord:
        spec = RunSpec(solver=solver, suite="structured", function="arrow", dim=12, instance=1, seed=1,
                       budget=1000, target=1e-8, sigma0=2.0)
        return RunRecord(spec=spec, function_label="arrow", evaluations=evaluations, iterations=10, success=success,
                         evaluations_to_target=evaluations if success else None, best_precision=0.0,
                         wall_seconds=seconds, stop_reasons=["x"], seconds_to_target=seconds if success else None,
                         kind="structured")

    records = [record("ngd:hier:2,3", 100, 1.0, True), record("ngd:hier:2,3", 300, 3.0, True),
               record("cma", 1000, 40.0, False), record("cma", 1000, 60.0, False)]
    rows = {row.solver: row for row in summarise(records, ["ngd:hier:2,3", "cma"])}
    fit, cma = rows["ngd:hier:2,3"], rows["cma"]
    assert fit.median_seconds_to_target == 2.0 and fit.time_ert == 2.0 and fit.kind == "structured"
    assert fit.ert_ratio_bound == 0.2 and fit.time_ratio_bound == 2.0 / 50.0
    assert format_ratio(fit) == "< 0.2 (CMA ✗)" and format_ratio(fit, seconds=True) == "< 0.04 (CMA ✗)"
    assert format_seconds_to_target(fit) == "2" and format_seconds_to_target(cma) == "> 50"


# -- the command line ---------------------------------------------------------------------------------

def config_of(argv: list[str]):
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return make_config(parser.parse_args(argv))


def test_quick_default_runs_generic_and_structured_problems() -> None:
    config = config_of([])
    kinds = {config.suite_of(f) for f in config.functions}
    assert kinds == {"builtin", "structured"}
    runs = config.runs()
    structured = [r for r in runs if r.suite == "structured"]
    assert structured and {r.dim for r in structured} == {30} and {r.dim for r in runs} == {10, 30}
    assert {"ngd:hier:2,3", "ngd:kron(dense,dense)"} <= {r.solver for r in structured}
    assert not any(r.solver.startswith("ngd:kron") for r in runs if r.suite == "builtin")  # no shape there
    assert {r.dim for r in config_of(["--quick", "--dims", "12"]).runs()} == {12}  # --dims applies to all


def test_structured_suite_defaults_to_the_fitting_structures() -> None:
    config = config_of(["--suite", "structured", "--dims", "100"])
    assert set(config.functions) == set(STRUCTURED)
    for function in config.functions:
        solvers = {r.solver for r in config.runs() if r.function == function}
        assert solvers == {f"ngd:{s}" for s in fitting_structures(function, 100)} | {"cma", "sep-cma", "vkd-cma"}


@pytest.mark.parametrize(("options", "message"), [
    (["--suite", "structured", "--dims", "13", "--functions", "kron-quadratic"], "does not factor"),
    (["--functions", "sphere", "--structures", "kron(dense,dense)"], "can be built for none of the problems"),
    (["--suite", "structured", "--functions", "sphere"], "are generic functions"),
    (["--functions", "arow"], "structured: arrow, arrow-rosenbrock"),
])
def test_bad_structured_options_fail_with_a_message(options: list[str], message: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *options, "--out", str(tmp_path / "never")]) == 2
    assert message in capsys.readouterr().err


def test_tiny_structured_run_writes_table_json_csv_and_plots(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--suite", "structured", "--functions", "arrow,kron-logistic", "--dims", "12", "--seeds", "1",
            "--budget", "60", "--structures", "fit,diag", "--solvers", "cma,vkd-cma", "--jobs", "1",
            "--plot-x", "both", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ngd:hier:2,3" in out and "ngd:kron(dense,dense)" in out and "(structured)" in out
    assert "median s" in out and "time /" in out and "machine:" in out and "CPUs" in out

    document = json.loads((tmp_path / "results.json").read_text())
    assert document["settings"]["suite"] == "structured" and document["machine"]["cpu_count"] >= 1
    solvers = {(row["function"], row["solver"]) for row in document["summary"]}
    assert solvers == {("arrow", "ngd:hier:2,3"), ("arrow", "ngd:diag"), ("arrow", "cma"), ("arrow", "vkd-cma"),
                       ("kron-logistic", "ngd:kron(dense,dense)"), ("kron-logistic", "ngd:diag"),
                       ("kron-logistic", "cma"), ("kron-logistic", "vkd-cma")}
    assert all(row["kind"] == "structured" for row in document["summary"])
    assert all(len(run["history_seconds"]) == len(run["history"]) for run in document["runs"])

    with (tmp_path / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and {"kind", "median_seconds_to_target", "time_ert", "time_ratio_to_cma"} <= set(rows[0])
    with (tmp_path / "runs.csv").open() as handle:
        runs = list(csv.DictReader(handle))
    assert len(runs) == 8 and {"kind", "seconds_to_target", "max_seconds"} <= set(runs[0])
    for name in ("convergence_arrow_p12.png", "convergence_arrow_p12_seconds.png",
                 "convergence_kron-logistic_p12.png", "ert_ratio.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
