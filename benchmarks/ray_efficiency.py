"""Parallel efficiency of RayEvaluator against EvoTorch's Ray evaluation, same objective, same Ray.

The objective sleeps 20 ms, so an ideal pool of W workers evaluates ``W / 0.02`` candidates per
second whatever the machine's cores; the table shows how close each library gets. Both run in one
Ray session, with the same CPUs reserved per actor, the same population size and generations, and
each pool is fully started before the clock runs.

Each row is the median of ``--repeats`` runs per library, taken in turns (es_ngd, EvoTorch, es_ngd,
…) so that both meet the same background load; every run is kept in the JSON file. Two columns help
read the result on a busy machine. ``sleep ceiling`` is 20 ms over what
``time.sleep(0.02)`` really took in the driver just before the row: no library can beat it.
``ray round`` is the median time of one round of Ray calls that do nothing, one to each of the
row's actors (same resources), and ``ray ceiling`` the efficiency of an evaluator whose only
overhead per generation were that round: an evaluator that sends each actor one Ray task per
generation (the least a task-based one can send) cannot do better on that machine.
``es_ngd busy`` is the share of the pool's time that es_ngd's workers spent inside their chunks;
the rest of the gap to the efficiency is Ray's and the driver's overhead.

    python benchmarks/ray_efficiency.py                      # 1, 2, 4, 8, 16 workers, population 64
    python benchmarks/ray_efficiency.py --workers 4 16 --generations 5 --no-evotorch

Writes benchmarks/results/ray_efficiency.json and .txt (command and machine at the top).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves this machine
import ray
from _results import command_line, write_results

from es_ngd.evaluators.ray import RayEvaluator
from es_ngd.strategy import NGDES

RESULTS = Path(__file__).resolve().parent / "results"
DIMENSION = 10
SLEEP = 0.02  # seconds per evaluation; set from --sleep before any worker starts


def sleepy(x: Any) -> float:
    """The benchmark objective: a fixed 20 ms of 'simulation', then a sphere."""
    time.sleep(SLEEP)
    return float((x**2).sum())


def es_ngd_run(workers: int, popsize: int, generations: int, num_cpus: float) -> tuple[float, float]:
    """Evaluations per second over ``generations`` ask/evaluate/tell steps, and the busy share."""
    es = NGDES(np.zeros(DIMENSION), 1.0, structure="diag", popsize=popsize, seed=0)
    with RayEvaluator(sleepy, num_workers=workers, num_cpus=num_cpus) as evaluator:
        evaluator.wait_until_ready()  # time the whole pool, not its start-up
        for generation in range(generations + 1):
            if generation == 1:  # generation 0 is a warm-up, as for EvoTorch
                start, busy_before = time.perf_counter(), evaluator.stats.evaluation_seconds
            population = es.ask_population()
            es.tell(population.candidates(), evaluator.evaluate(population))
        elapsed = time.perf_counter() - start
        busy = (evaluator.stats.evaluation_seconds - busy_before) / (workers * elapsed)
    return generations * popsize / elapsed, busy


def evotorch_run(workers: int, popsize: int, generations: int, num_cpus: float) -> float:
    """The same measurement for EvoTorch's ``Problem(num_actors=workers)`` with its SNES."""
    import torch
    from evotorch import Problem
    from evotorch.algorithms import SNES

    def sleepy_torch(x: torch.Tensor) -> torch.Tensor:
        time.sleep(SLEEP)
        return (x**2).sum()

    torch.manual_seed(0)  # not Problem(seed=...): evotorch 0.6.1's actors then call a missing Problem.seed()
    problem = Problem("min", sleepy_torch, solution_length=DIMENSION, initial_bounds=(-1.0, 1.0),
                      num_actors=workers, actor_config={"num_cpus": num_cpus})
    searcher = SNES(problem, stdev_init=1.0, popsize=popsize)
    searcher.step()  # creates the actors (each gets a piece of every population) and warms up
    start = time.perf_counter()
    for _ in range(generations):
        searcher.step()
    elapsed = time.perf_counter() - start
    if problem.actors is not None:  # EvoTorch evaluates in the driver when asked for one actor
        problem.kill_actors()
    return generations * popsize / elapsed


@ray.remote
class _Idle:
    def ping(self, _: Any = None) -> int:
        return 0


def ray_round_seconds(workers: int, num_cpus: float, rounds: int = 30) -> float:
    """Median wall time of one round of Ray calls that do nothing: one to each of ``workers`` actors,
    then wait for all. Every generation pays at least this, whatever the evaluator (measured here,
    with the same actors and resources, because it is what bounds the efficiency on a small machine)."""
    actors = [_Idle.options(num_cpus=num_cpus).remote() for _ in range(workers)]
    for _ in range(5):  # started, and past their first calls
        ray.get([actor.ping.remote() for actor in actors])
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        ray.get([actor.ping.remote((0, 4)) for actor in actors])
        times.append(time.perf_counter() - start)
    for actor in actors:
        ray.kill(actor)
    return float(np.median(times))


def sleep_ceiling(repeats: int = 25) -> float:
    """``SLEEP`` over the mean time ``time.sleep(SLEEP)`` takes here and now."""
    start = time.perf_counter()
    for _ in range(repeats):
        time.sleep(SLEEP)
    return SLEEP * repeats / (time.perf_counter() - start)


def busy_cores(seconds: float = 2.0) -> float | None:
    """Cores kept busy by everything on the machine over ``seconds`` (Linux /proc/stat; None elsewhere)."""
    def busy_and_total() -> tuple[int, int]:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = ticks[3] + ticks[4]  # idle + iowait
        return sum(ticks) - idle, sum(ticks)

    try:
        busy0, total0 = busy_and_total()
        time.sleep(seconds)
        busy1, total1 = busy_and_total()
    except (OSError, ValueError, IndexError):
        return None
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0)


def machine() -> dict[str, Any]:
    versions = {"python": platform.python_version(), "ray": ray.__version__, "numpy": np.__version__}
    try:
        import evotorch

        versions["evotorch"] = evotorch.__version__
    except ImportError:
        pass
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "versions": versions}


COLUMNS = ["workers", "ideal/s", "sleep ceiling", "ray round", "ray ceiling", "es_ngd/s", "es_ngd eff", "es_ngd busy",
           "evotorch/s", "evotorch eff", "load"]


def format_row(row: dict[str, Any]) -> str:
    theirs = row["evotorch_evals_per_s"]
    cells = [f"{row['workers']}", f"{row['ideal_evals_per_s']:.0f}", f"{row['sleep_ceiling']:.1%}",
             f"{row['ray_round_s'] * 1e3:.1f} ms", f"{row['ray_ceiling']:.1%}",
             f"{row['es_ngd_evals_per_s']:.1f}", f"{row['es_ngd_efficiency']:.1%}", f"{row['es_ngd_busy']:.1%}",
             "-" if theirs is None else f"{theirs:.1f}",
             "-" if theirs is None else f"{row['evotorch_efficiency']:.1%}", f"{row['load_average']:.1f}"]
    return "  ".join(cell.rjust(len(name)) for cell, name in zip(cells, COLUMNS, strict=True))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    global SLEEP
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--generations", type=int, default=10, help="timed generations per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per library and row (median reported)")
    parser.add_argument("--sleep", type=float, default=0.02, help="seconds the objective sleeps")
    parser.add_argument("--no-evotorch", action="store_true", help="measure es_ngd only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    SLEEP = args.sleep

    command = command_line(argv)
    info = machine()
    background = busy_cores()  # before any of ours runs: what the other users of the machine take
    ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray_cpus = float(ray.cluster_resources()["CPU"])
    header = [
        f"command: {command}",
        f"machine: {info['platform']}, {info['processor']}, {info['cpu_count']} CPUs; "
        + ", ".join(f"{name} {version}" for name, version in info["versions"].items()),
        f"objective sleeps {SLEEP * 1e3:g} ms; population {args.popsize}; {args.generations} timed generations "
        f"after a warm-up, median of {args.repeats} runs; es_ngd diag NGDES vs EvoTorch SNES, dimension "
        f"{DIMENSION}; each actor reserves min(1, {ray_cpus:g} CPUs / workers); ideal = workers / {SLEEP:g} s",
        f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; other work kept "
        f"{'?' if background is None else f'{background:.1f}'} of {info['cpu_count']} cores busy just before "
        "the run (a shared machine; 'load' is the 1-minute load average after each row)",
        "EvoTorch turns num_actors=1 into evaluation in the driver process (no actor), so its 1-worker row is serial",
    ]
    print("\n".join(header), flush=True)
    print("  ".join(COLUMNS), flush=True)

    rows = []
    for workers in args.workers:
        num_cpus = min(1.0, float(np.floor(1e4 * ray_cpus / workers) / 1e4))
        ideal = workers / SLEEP
        ceilings, rounds, ours, busy, theirs = [], [], [], [], []
        for _ in range(args.repeats):
            ceilings.append(sleep_ceiling())
            rounds.append(ray_round_seconds(workers, num_cpus))
            throughput, busy_share = es_ngd_run(workers, args.popsize, args.generations, num_cpus)
            ours.append(throughput)
            busy.append(busy_share)
            if not args.no_evotorch:
                theirs.append(evotorch_run(workers, args.popsize, args.generations, num_cpus))
        median = float(np.median(ours))
        # the best a generation can do: each worker's share of sleeps (as long as sleeps really take
        # here) plus one round of Ray calls
        work = args.popsize / workers * SLEEP
        ray_round = float(np.median(rounds))
        ray_ceiling = work / (work / float(np.median(ceilings)) + ray_round)
        theirs_median = float(np.median(theirs)) if theirs else None
        row = {"workers": workers, "num_cpus_per_actor": num_cpus, "ideal_evals_per_s": ideal,
               "sleep_ceiling": float(np.median(ceilings)), "ray_round_s": ray_round, "ray_ceiling": ray_ceiling,
               "es_ngd_evals_per_s": median,
               "es_ngd_efficiency": median / ideal, "es_ngd_busy": float(np.median(busy)),
               "evotorch_evals_per_s": theirs_median,
               "evotorch_efficiency": None if theirs_median is None else theirs_median / ideal,
               "load_average": os.getloadavg()[0],
               "runs": {"es_ngd_evals_per_s": ours, "evotorch_evals_per_s": theirs, "sleep_ceiling": ceilings,
                        "ray_round_s": rounds}}
        rows.append(row)
        print(format_row(row), flush=True)
    ray.shutdown()

    report = {"command": command, "machine": info, "ray_cpus": ray_cpus, "sleep_s": SLEEP, "popsize": args.popsize,
              "generations": args.generations, "repeats": args.repeats, "background_busy_cores": background,
              "header": header, "rows": rows}
    table = ["  ".join(COLUMNS), *(format_row(row) for row in rows)]
    write_results(args.out / "ray_efficiency", [*header, *table], report)
    return report


if __name__ == "__main__":
    main()
