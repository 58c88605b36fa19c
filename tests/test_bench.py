"""``es-ngd bench``: it writes its report, runs are reproducible, every solver gets the same budget
and target through its public ask/tell, and bad options fail with a message (exit code 2)."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cma")
pytest.importorskip("rich")
pytest.importorskip("matplotlib")

from es_ngd.bench.functions import FUNCTIONS, make_problem
from es_ngd.bench.report import summarise
from es_ngd.bench.runner import CountedObjective, RunRecord, RunSpec, run_all, run_one
from es_ngd.bench.solvers import CMASolver
from es_ngd.cli import main


def spec(solver: str, *, function: str = "sphere", dim: int = 3, seed: int = 1, budget: int = 300,
         target: float = 1e-8) -> RunSpec:
    return RunSpec(solver=solver, suite="builtin", function=function, dim=dim, instance=seed, seed=seed,
                   budget=budget, target=target, sigma0=2.0)


# -- the report --------------------------------------------------------------------------------------

def test_tiny_run_writes_table_json_csv_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--functions", "sphere", "--dims", "3", "--seeds", "2", "--budget", "200",
            "--structures", "diag", "--solvers", "cma", "--jobs", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ERT / CMA-ES" in out and "ngd:diag" in out and "cma" in out
    assert "functions: sphere" in out  # it says what it ran

    document = json.loads((tmp_path / "results.json").read_text())
    assert document["command"] == "es-ngd " + " ".join(argv)
    assert document["machine"]["cpu_count"] >= 1 and document["versions"]["cma"]
    assert document["settings"]["budget_per_dim"] == 200 and document["settings"]["seeds"] == [1, 2]
    assert [row["solver"] for row in document["summary"]] == ["ngd:diag", "cma"]
    assert len(document["runs"]) == 4 and all(run["history"] for run in document["runs"])

    with (tmp_path / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["function"], r["dim"], r["solver"]) for r in rows] == [("sphere", "3", "ngd:diag"),
                                                                      ("sphere", "3", "cma")]
    assert rows[1]["ert_ratio_to_cma"] == "1.0" or rows[1]["successes"] == "0"
    with (tmp_path / "runs.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 4
    assert (tmp_path / "convergence_sphere_p3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ert_success_rate_and_ratio_to_cma() -> None:
    def record(solver: str, evaluations: int, success: bool) -> RunRecord:
        return RunRecord(spec=spec(solver), function_label="sphere", evaluations=evaluations, iterations=10,
                         success=success, evaluations_to_target=evaluations if success else None,
                         best_precision=1e-9 if success else 1.0, wall_seconds=0.1, stop_reasons=["x"])

    records = [record("cma", 100, True), record("cma", 300, True),
               record("ngd:diag", 100, True), record("ngd:diag", 500, False),
               record("sep-cma", 500, False)]
    rows = {row.solver: row for row in summarise(records, ["ngd:diag", "cma", "sep-cma"])}
    assert rows["cma"].ert == 200 and rows["cma"].median_evaluations_to_target == 200
    assert rows["ngd:diag"].ert == 600 and rows["ngd:diag"].successes == 1  # all evaluations / successes
    assert rows["ngd:diag"].ert_ratio_to_cma == 3.0
    assert math.isinf(rows["sep-cma"].ert) and rows["sep-cma"].median_evaluations_to_target is None


# -- runs are honest and reproducible ---------------------------------------------------------------

@pytest.mark.parametrize("solver", ["ngd:up:1", "cma", "sep-cma", "vkd-cma"])
def test_a_run_is_reproducible_from_its_seed(solver: str) -> None:
    first, again = run_one(spec(solver, function="rosenbrock")), run_one(spec(solver, function="rosenbrock"))
    assert (first.evaluations, first.history) == (again.evaluations, again.history)
    other = run_one(spec(solver, function="rosenbrock", seed=2))
    assert other.history != first.history


def test_parallel_runs_match_serial_runs() -> None:
    specs = [spec("ngd:diag", seed=1), spec("cma", seed=2)]
    serial, parallel = run_all(specs, jobs=1), run_all(specs, jobs=2)
    assert [r.history for r in serial] == [r.history for r in parallel]


def test_problems_are_seeded_and_have_minimum_zero() -> None:
    for name in FUNCTIONS:
        problem = make_problem(name, 4, instance=3)
        again = make_problem(name, 4, instance=3)
        np.testing.assert_array_equal(problem.x0, again.x0)
        x_opt = problem.evaluate.x_opt  # the minimiser: f = 0 there, f > 0 nearby
        assert problem.evaluate(x_opt[None, :])[0] == pytest.approx(0.0, abs=1e-12)
        assert problem.evaluate(x_opt[None, :] + 0.1)[0] > 0
    assert not np.array_equal(make_problem("cigar", 4, 1).x0, make_problem("cigar", 4, 2).x0)


@pytest.mark.parametrize("solver", ["ngd:dense", "cma", "vkd-cma"])
def test_counted_objective_sees_exactly_the_reported_evaluations_within_budget(solver: str) -> None:
    run = spec(solver, function="rotated-ellipsoid", budget=95)  # not a multiple of any population size
    problem = make_problem("rotated-ellipsoid", 3, 1)
    seen = CountedObjective(problem.evaluate)  # an independent counter around the objective
    record = run_one(run, problem=type(problem)(**{**problem.__dict__, "evaluate": seen}))
    assert record.evaluations == seen.calls <= 95
    assert record.stop_reasons == ["budget"] and record.evaluations > 95 - 10  # stopped for lack of budget


def test_pycma_is_driven_through_public_ask_tell_with_the_same_budget_and_target(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import cma

    calls = {"ask": 0, "tell": 0}
    options_seen = {}
    original_init, original_ask, original_tell = (cma.CMAEvolutionStrategy.__init__, cma.CMAEvolutionStrategy.ask,
                                                  cma.CMAEvolutionStrategy.tell)

    def init(self, x0, sigma0, inopts=None, **kwargs):
        options_seen.update(inopts)
        original_init(self, x0, sigma0, inopts, **kwargs)

    def ask(self, *args, **kwargs):
        calls["ask"] += 1
        return original_ask(self, *args, **kwargs)

    def tell(self, *args, **kwargs):
        calls["tell"] += 1
        return original_tell(self, *args, **kwargs)

    monkeypatch.setattr(cma.CMAEvolutionStrategy, "__init__", init)
    monkeypatch.setattr(cma.CMAEvolutionStrategy, "ask", ask)
    monkeypatch.setattr(cma.CMAEvolutionStrategy, "tell", tell)
    record = run_one(spec("cma", target=1e-3, budget=3000))
    assert record.success and record.evaluations_to_target == record.evaluations <= 3000
    assert calls["ask"] == calls["tell"] == record.iterations
    assert options_seen["maxfevals"] == 3000 and options_seen["ftarget"] == 1e-3 and options_seen["seed"] == 1
    ngd = run_one(spec("ngd:diag", target=1e-3, budget=3000))  # the same rule ends es_ngd's run
    assert ngd.success and ngd.stop_reasons == ["target"]


def test_variants_set_their_pycma_options() -> None:
    x0 = np.zeros(4)
    assert CMASolver("sep-cma", x0, 1.0, 1, 100, 0.0).es.opts["CMA_diagonal"] is True
    assert "VkD" in type(CMASolver("vkd-cma", x0, 1.0, 1, 100, 0.0).es.sm).__name__
    with pytest.raises(ValueError, match="seed >= 1"):
        CMASolver("cma", x0, 1.0, 0, 100, 0.0)


# -- the command line --------------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "message"), [
    (["--functions", "sphre"], "unknown function(s) ['sphre']; valid functions: sphere, ellipsoid"),
    (["--structures", "dense,upp:2"], "unknown structure 'upp:2'; valid structures:"),
    (["--solvers", "cmaes"], "unknown solver(s) ['cmaes']; valid solvers: cma, sep-cma, vkd-cma"),
    (["--dims", "0"], "dimensions must be >= 1"),
    (["--dims", "ten"], "'ten' is not an integer"),
    (["--budget", "0"], "--budget must be a positive finite number"),
    (["--budget", "-5"], "--budget must be a positive finite number"),
    (["--seeds", "0,1"], "seeds must be >= 1"),
    (["--target", "nan"], "--target must be a positive finite number"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--instances", "1-3"], "--instances applies to --suite bbob only"),
    (["--budget", "0.1"], "not even one generation"),
    (["--structures", "none", "--solvers", "none"], "nothing to run"),
])
def test_bad_options_fail_with_a_message(options: list[str], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *options, "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err
    assert message in err and "es-ngd bench: error:" in err
    assert not (tmp_path / "never").exists()


def test_structures_with_several_arguments_stay_together() -> None:
    from es_ngd.bench.cli import split_structures

    assert split_structures("dense, up:2,diag,low:3") == ("dense", "up:2", "diag", "low:3")


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "bench" in capsys.readouterr().err
    assert main(["--help"]) == 0


def test_a_command_whose_module_is_missing_fails_clearly(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import es_ngd.cli

    monkeypatch.setitem(es_ngd.cli.COMMANDS, "plot", es_ngd.cli.Command("es_ngd._not_here", "plot", "bench"))
    assert main(["plot"]) == 1
    assert "no module es_ngd._not_here" in capsys.readouterr().err


def test_help_starts_without_the_optional_packages() -> None:
    code = ("import sys; from es_ngd.cli import main; code = main(['--help']);"
            "heavy = [m for m in ('cma', 'rich', 'matplotlib', 'cocoex') if m in sys.modules];"
            "assert code == 0 and not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "es_ngd", "bench", "--dims", "0"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "dimensions must be >= 1" in done.stderr


# -- COCO bbob ---------------------------------------------------------------------------------------

def test_bbob_without_cocoex_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "cocoex", None)  # import cocoex now raises ImportError
    assert main(["bench", "--suite", "bbob", "--out", str(tmp_path)]) == 2
    assert "pip install coco-experiment" in capsys.readouterr().err


def test_tiny_bbob_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cocoex")
    argv = ["bench", "--suite", "bbob", "--functions", "f1,rosenbrock", "--dims", "2", "--instances", "1",
            "--seeds", "1", "--budget", "600", "--structures", "dense", "--solvers", "cma", "--jobs", "1",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    assert "f8-rosenbrock" in capsys.readouterr().out
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    sphere = [r for r in runs if r["function_label"] == "f1-sphere"]
    assert all(r["success"] for r in sphere)  # f − f_opt reached 1e-8: so f_opt is right on f1


def test_bbob_optimum_matches_cocoex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cocoex = pytest.importorskip("cocoex")
    from cma import bbobbenchmarks

    from es_ngd.bench.bbob import bbob_optimum

    monkeypatch.chdir(tmp_path)  # cocoex writes the optimum it is asked to print into the working directory
    rng = np.random.default_rng(0)
    for problem in cocoex.Suite("bbob", "instances: 1,7", "dimensions: 3 function_indices: 1,2,10"):
        fopt = bbob_optimum(problem.id_function, problem.id_instance)
        reference = bbobbenchmarks.instantiate(problem.id_function, problem.id_instance)[0]
        x = rng.uniform(-4, 4, 3)
        assert problem(x) == pytest.approx(reference(x), rel=1e-12)  # the generator f_opt comes from
        problem._best_parameter("print")
        x_opt = np.loadtxt("._bbob_problem_best_parameter.txt")
        assert problem(x_opt) == pytest.approx(fopt, abs=1e-9)
