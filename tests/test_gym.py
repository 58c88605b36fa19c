"""Policy search on Gymnasium tasks (es_ngd.gym, ``es-ngd gym``): classic-control tasks only, short budgets."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from es_ngd.cli import main  # noqa: E402
from es_ngd.evaluators import SerialEvaluator, VectorizedEvaluator  # noqa: E402
from es_ngd.groups.product import Product  # noqa: E402
from es_ngd.gym.normalizer import RunningStats, merge_all  # noqa: E402
from es_ngd.gym.problem import GenerationContext, GymProblem  # noqa: E402
from es_ngd.gym.search import layer_structure, policy_search  # noqa: E402
from es_ngd.gym.spaces import UnsupportedSpaceError  # noqa: E402
from es_ngd.gym.storage import load_policy, save_policy  # noqa: E402

#: CartPole-v1 through the command (linear policy, defaults: the per-layer structure): the mean policy's return
#: over the 10 final evaluation episodes is 500 after this budget for seeds 1, 2, 3 (measured: runs end after
#: 20,710, 22,610 and 22,367 steps, the generation that crosses the budget included; the mean policy, evaluated
#: every 5 generations, returns 500 from generation 5 with seed 1 and from generation 10 with seeds 2 and 3).
CARTPOLE_BUDGET = 20_000


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cartpole")
    code = main(["gym", "CartPole-v1", "--budget", str(CARTPOLE_BUDGET), "--seed", "1", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_cartpole_is_solved_through_the_command_within_the_budget(cartpole_run) -> None:
    summary = json.loads((cartpole_run / "summary.json").read_text())
    assert summary["env_id"] == "CartPole-v1"
    assert summary["structure"] == "product(kron(tril,tril)@2x4,diag@2)"  # the default: per layer
    assert summary["eval_return"] >= 475, summary
    assert len(summary["eval_returns"]) == 10
    assert summary["env_steps"] <= CARTPOLE_BUDGET + 10 * 500  # at most one generation past the budget
    assert summary["generations"] >= 1
    for name in ("log.csv", "learning_curve.png", "checkpoint.npz", "policy_best.json", "policy_best.npz",
                 "policy_final.json", "policy_final.npz"):
        assert (cartpole_run / name).exists(), name
    with (cartpole_run / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert int(rows[-1]["env_steps"]) == summary["env_steps"]
    assert [int(r["generation"]) for r in rows] == list(range(1, summary["generations"] + 1))


def test_saved_policy_round_trip_and_play(cartpole_run, capsys) -> None:
    saved = load_policy(cartpole_run / "policy_final")
    assert saved.meta["env_id"] == "CartPole-v1" and saved.meta["policy"]["kind"] == "linear"
    assert saved.stats is not None and saved.stats.count > 0
    with np.load(cartpole_run / "policy_final.npz", allow_pickle=False) as arrays:  # no pickle needed
        np.testing.assert_array_equal(arrays["params"], saved.params)
    problem = saved.problem()
    info = problem.evaluate_policy(saved.params, saved.normalizer(), episodes=10)
    summary = json.loads((cartpole_run / "summary.json").read_text())
    assert list(info.returns) == summary["eval_returns"]  # the same fresh episodes as the run's final evaluation
    video = cartpole_run / "play.gif"
    capsys.readouterr()
    assert main(["gym", "play", str(cartpole_run), "--play-episodes", "2", "--video", str(video)]) == 0
    played = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert played["returns"] == [500.0, 500.0]
    assert video.exists() and video.stat().st_size > 1000


def test_play_video_needs_no_display(cartpole_run, tmp_path) -> None:
    """The GIF's frames are drawn off screen, so on a headless machine (no display, no XDG_RUNTIME_DIR) the
    command writes it without pygame printing a display error."""
    headless = {key: value for key, value in os.environ.items()
                if key not in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "SDL_VIDEODRIVER")}
    video = tmp_path / "headless.gif"
    done = subprocess.run([sys.executable, "-m", "es_ngd", "gym", "play", str(cartpole_run), "--play-episodes", "1",
                           "--video", str(video)], env=headless, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stderr.lower(), done.stderr
    assert video.stat().st_size > 1000


def test_pendulum_improves_with_an_mlp_policy() -> None:
    """Pendulum-v1, MLP (8,), popsize 8, σ₀ = 2/√3, 150,000 env steps, seed 2, the default (per-layer) structure:
    the mean policy's return over the same 10 fresh episodes improves by ≥ 200 (measured: −1,220 → −838). Seeds
    0–7 improved by 791, 840, 382, 432, 263, 812, 558 and −44 (at 60,000 steps: −15 to 520), so this states one
    seeded run, not a rate."""
    problem = GymProblem("Pendulum-v1", policy="mlp", hidden=(8,), seed=2)
    before = problem.evaluate_policy(problem.initial_parameters(), None, episodes=10)
    result = policy_search(problem, max_env_steps=150_000, popsize=8, sigma0=2 / np.sqrt(3))
    assert result.eval_return >= float(np.mean(before.returns)) + 200, (np.mean(before.returns), result.eval_return)


def test_serial_vectorised_and_ray_with_a_dying_worker_agree(tmp_path) -> None:
    """Three generations of CartPole with 2 episodes per candidate and per-candidate seeds: the serial, the
    vectorised and the Ray run (2 workers, one of which dies once in generation 1) give the same log, mean
    and normaliser, bit for bit; the dead worker is replaced, and no evaluation is lost or doubled."""
    ray = pytest.importorskip("ray")
    flag = tmp_path / "died"
    driver = os.getpid()

    def make_env():
        return DyingOnce(gymnasium.make("CartPole-v1"), str(flag), driver)

    def search(**kwargs):
        problem = GymProblem(make_env, seed=2, episodes=2, common_random_numbers=False)
        return policy_search(problem, max_env_steps=10**9, maxiter=3, popsize=8, eval_every=100, **kwargs)

    serial = search()
    vectorised = search(vectorized=True)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        from es_ngd.evaluators.ray import RayEvaluator

        problem = GymProblem(make_env, seed=2, episodes=2, common_random_numbers=False)
        with RayEvaluator(problem, num_workers=2, num_cpus=0.5, init_hook=problem.make_env) as evaluator:
            on_ray = policy_search(problem, max_env_steps=10**9, maxiter=3, popsize=8, eval_every=100,
                                   evaluator=evaluator)
            replaced = evaluator.stats.workers_replaced
            assert evaluator.stats.evaluations == 3 * 8
    finally:
        ray.shutdown()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert flag.exists() and replaced >= 1
    keys = ("env_steps", "best_return", "mean_return", "sigma", "failed")
    for other in (vectorised, on_ray):
        assert [[row[k] for k in keys] for row in other.history] == [[row[k] for k in keys] for row in serial.history]
        np.testing.assert_array_equal(other.mean, serial.mean)
        np.testing.assert_array_equal(other.stats.mean, serial.stats.mean)
        np.testing.assert_array_equal(other.stats.m2, serial.stats.m2)
    assert serial.stats.count == serial.env_steps  # one observation per step, every one merged once


class DyingOnce(gymnasium.Wrapper):
    """Kills its process at its 20th step the first time it runs outside the test's own process."""

    def __init__(self, env, flag: str, driver: int) -> None:
        super().__init__(env)
        self.flag, self.driver, self.steps = flag, driver, 0

    def step(self, action):
        self.steps += 1
        if self.steps == 20 and os.getpid() != self.driver and not os.path.exists(self.flag):
            open(self.flag, "w").close()
            os._exit(1)
        return self.env.step(action)


def test_normaliser_merge_equals_the_statistics_of_the_concatenated_observations() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(int(n), 5)) for n in rng.integers(1, 200, size=12)]
    merged = merge_all(RunningStats.empty(5), [RunningStats.of(b) for b in batches[:6]] + [None])
    merged = merged.merge(merge_all(RunningStats.empty(5), [RunningStats.of(b) for b in batches[6:]]))
    everything = np.concatenate(batches)
    assert merged.count == len(everything)
    np.testing.assert_allclose(merged.mean, everything.mean(0), rtol=1e-13)
    np.testing.assert_allclose(merged.var, everything.var(0), rtol=1e-12)
    frozen = merged.frozen()
    np.testing.assert_allclose(frozen(everything).mean(0), 0.0, atol=1e-12)


def test_context_reaches_the_objective_and_infos_come_back_from_local_evaluators() -> None:
    problem = GymProblem("CartPole-v1", seed=0)
    import es_ngd

    es = es_ngd.NGDES(problem.initial_parameters(), 0.5, popsize=6, seed=1)
    population = es.ask_population()
    stats = RunningStats.of(np.random.default_rng(1).standard_normal((50, 4)))
    context = GenerationContext(3, stats.frozen())
    serial = SerialEvaluator(problem).evaluate_with_info(population, context)
    vectorised = VectorizedEvaluator(problem.batch).evaluate_with_info(population, context)
    np.testing.assert_array_equal(serial[0], vectorised[0])
    assert [i.steps for i in serial[1]] == [i.steps for i in vectorised[1]]
    assert all(-f == r.returns[0] for f, r in zip(serial[0], serial[1], strict=True))
    # another generation number means other episode seeds; without context, generation 0
    other = SerialEvaluator(problem).evaluate_with_info(population, GenerationContext(4, stats.frozen()))
    assert [i.steps for i in other[1]] != [i.steps for i in serial[1]] or not np.array_equal(other[0], serial[0])
    np.testing.assert_array_equal(SerialEvaluator(problem).evaluate(population), problem.batch(
        population.candidates(), context=GenerationContext(0)).fitness)


def test_resume_continues_the_run_exactly(tmp_path) -> None:
    def problem():
        return GymProblem("CartPole-v1", seed=4)

    straight = policy_search(problem(), max_env_steps=3000, out=tmp_path / "straight", eval_every=2)
    policy_search(problem(), max_env_steps=1200, out=tmp_path / "resumed", eval_every=2)
    resumed = policy_search(problem(), max_env_steps=3000, out=tmp_path / "resumed", eval_every=2, resume=True)
    np.testing.assert_array_equal(resumed.mean, straight.mean)
    assert resumed.env_steps == straight.env_steps and resumed.generations == straight.generations
    # the budget is checked before each generation: the last one started under it and ran to its end
    assert straight.history[-2]["env_steps"] < 3000 <= straight.env_steps == straight.history[-1]["env_steps"]
    with (tmp_path / "resumed" / "log.csv").open() as handle:
        generations = [int(row["generation"]) for row in csv.DictReader(handle)]
    assert generations == list(range(1, straight.generations + 1))


def test_per_layer_structure_is_a_product_over_the_policy_blocks() -> None:
    import es_ngd

    problem = GymProblem("Pendulum-v1", policy="mlp", hidden=(8, 4), seed=0)
    spec = layer_structure("layers:kron(tril,tril)", problem)
    assert spec == "product(kron(tril,tril)@8x3,diag@8,kron(tril,tril)@4x8,diag@4,kron(tril,tril)@1x4,diag@1)"
    es = es_ngd.NGDES(problem.initial_parameters(), 0.3, structure=spec, seed=0)
    assert isinstance(es.group, Product) and es.dim == problem.num_parameters
    assert layer_structure("layers:up:1,dense", problem).startswith("product(up:1@24,dense@8,")
    with pytest.raises(ValueError, match="written 'layers:WEIGHTS'"):
        layer_structure("layers:", problem)
    # a two-generation search with it runs, through the search's own expansion
    result = policy_search(problem, max_env_steps=10**9, maxiter=2, structure="layers:kron(dense,diag)")
    assert result.generations == 2


def test_torch_module_policy() -> None:
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    problem = GymProblem("CartPole-v1", policy=module, seed=0)
    assert problem.num_parameters == 4 * 8 + 8 + 8 * 2 + 2
    x = problem.initial_parameters()
    obs = np.random.default_rng(0).standard_normal((1, 4))
    with torch.no_grad():
        expected = module(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(problem.policy.forward(x[None], obs), expected, rtol=1e-12)
    assert layer_structure("layers:kron(dense,dense)", problem).startswith("product(kron(dense,dense)@4x8,diag@8")
    result = policy_search(problem, max_env_steps=10**9, maxiter=2, structure="layers:kron(dense,dense)")
    assert result.generations == 2


# -- bad input -------------------------------------------------------------------------------------
class SpaceEnv(gymnasium.Env):
    def __init__(self, observation_space, action_space) -> None:
        self.observation_space, self.action_space = observation_space, action_space


def test_unknown_environment_ids_are_clear_errors(capsys) -> None:
    with pytest.raises(ValueError, match="unknown environment id 'NoSuchEnv-v0'"):
        GymProblem("NoSuchEnv-v0")
    assert main(["gym", "NoSuchEnv-v0", "--budget", "10", "--quiet"]) == 1
    assert "unknown environment id" in capsys.readouterr().err


@pytest.mark.parametrize(("observation", "action", "message"), [
    (gymnasium.spaces.Box(0, 255, (8, 8, 3)), gymnasium.spaces.Discrete(2), "FlattenObservation"),
    (gymnasium.spaces.Dict({"a": gymnasium.spaces.Discrete(3)}), gymnasium.spaces.Discrete(2), "flat Box"),
    (gymnasium.spaces.Box(-1, 1, (3,)), gymnasium.spaces.MultiDiscrete([2, 3]), "only Discrete and a 1-D Box"),
    (gymnasium.spaces.Box(-1, 1, (3,)), gymnasium.spaces.Box(-1, 1, (2, 2)), "only a 1-D Box"),
])
def test_unsupported_spaces_are_clear_errors(observation, action, message) -> None:
    with pytest.raises(UnsupportedSpaceError, match=message):
        GymProblem(lambda: SpaceEnv(observation, action))


def test_squashing_needs_bounded_actions() -> None:
    unbounded = gymnasium.spaces.Box(-np.inf, np.inf, (2,))
    with pytest.raises(UnsupportedSpaceError, match="unbounded"):
        GymProblem(lambda: SpaceEnv(gymnasium.spaces.Box(-1, 1, (3,)), unbounded), squash=True)


def test_policy_of_the_wrong_size_is_refused(tmp_path) -> None:
    problem = GymProblem("CartPole-v1")
    with pytest.raises(ValueError, match="shape \\(3,\\) do not fit the linear policy of CartPole-v1, which has 10"):
        problem(np.zeros(3))
    with pytest.raises(ValueError, match="which has 10 parameters"):
        policy_search(problem, max_env_steps=100, x0=np.zeros(11))
    save_policy(tmp_path / "p", problem, np.zeros(10), None)
    meta = json.loads((tmp_path / "p.json").read_text())
    meta["policy"] = {"kind": "mlp", "hidden": [4], "activation": "tanh", "bias": True}
    meta["num_parameters"] = 10
    (tmp_path / "p.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not fit the mlp policy"):
        load_policy(tmp_path / "p").problem()


class Faulty(gymnasium.Wrapper):
    """Pendulum that returns a NaN reward for a large positive torque and raises for a large negative one."""

    def step(self, action):
        if action[0] > 1.9:
            return self.env.step(action)[0], math.nan, False, False, {}
        if action[0] < -1.9:
            raise RuntimeError("the simulator blew up")
        return self.env.step(action)


@pytest.mark.parametrize("vectorized", [False, True])
def test_failing_environment_ranks_the_candidate_last_and_the_run_goes_on(tmp_path, vectorized) -> None:
    problem = GymProblem(lambda: Faulty(gymnasium.make("Pendulum-v1")), seed=0, max_steps=50)
    result = policy_search(problem, max_env_steps=10**9, maxiter=4, popsize=12, sigma0=0.5, vectorized=vectorized,
                           out=tmp_path)
    assert result.generations == 4 and np.isfinite(result.mean).all()
    failed = [row["failed"] for row in result.history]
    assert sum(failed) > 0 and any(f < 12 for f in failed)  # some candidates fail, others are ranked above them
    with (tmp_path / "log.csv").open() as handle:
        notes = [row["note"] for row in csv.DictReader(handle) if row["note"]]
    assert any("reward nan" in note for note in notes) and any("simulator blew up" in note for note in notes)


def test_bad_command_lines_are_usage_errors(tmp_path, capsys) -> None:
    assert main(["gym", "play"]) == 2
    assert main(["gym", "CartPole-v1", "--resume", "--quiet"]) == 2
    assert main(["gym", "CartPole-v1", "--hidden", "a,b", "--quiet"]) == 2
    assert main(["gym", "play", str(tmp_path)]) == 1
    assert main(["gym", "CartPole-v1", "--structure", "bogus", "--budget", "10", "--quiet"]) == 1
    assert "unknown structure 'bogus'" in capsys.readouterr().err
