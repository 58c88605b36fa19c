"""``es-ngd bench``: options, their validation, and the run → report sequence.

Options that choose *what* runs (suite, functions, dims, structures, solvers, seeds, instances,
budget, target, sigma0) switch from the quick defaults to the full ones; ``--jobs`` and ``--out``
do not. So ``es-ngd bench`` and ``es-ngd bench --out results`` run the quick benchmark, while
``es-ngd bench --dims 40`` runs the full suite in p = 40. ``--quick`` keeps the quick defaults
for whatever is not given.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from es_ngd.bench.provenance import describe_machine, run_metadata
from es_ngd.cli import UsageError

#: options that say what to run; giving any of them (without --quick) selects the full defaults
WHAT_TO_RUN = ("suite", "functions", "dims", "structures", "solvers", "seeds", "instances", "budget",
               "target", "sigma0", "max_seconds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``es-ngd bench``; all default to None, :func:`make_config` fills in defaults."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Benchmark es_ngd structures against pycma's CMA-ES, sep-CMA-ES and VkD-CMA-ES on the same\n"
        "problems, with the same starting points, step size, budget, target and seeds for every solver.\n\n"
        "With no options it runs the quick benchmark (4 generic functions in p = 10 and 2 structured\n"
        "problems in p = 30, 3 seeds, about a minute on 2 cores). --suite structured runs the problems\n"
        "whose curvature has a group's structure (arrow, Kronecker, Toeplitz, sparse Cholesky, low rank),\n"
        "each with the es_ngd structures made for it (--structures fit). Choosing any of --suite/\n"
        "--functions/--dims/--structures/--solvers/--seeds/--instances/--budget/--target/--sigma0/\n"
        "--max-seconds fills the others with the full defaults (all generic functions, p = 10, 5 seeds,\n"
        "10000 evaluations per dimension; structured: all 8 problems in p = 100, 5 seeds, 2000 per\n"
        "dimension), unless --quick is given too.")
    parser.epilog = ("examples:\n"
                     "  es-ngd bench                                   # the quick benchmark\n"
                     "  es-ngd bench --dims 10,40 --jobs 2 --out res   # full suite in p = 10 and 40\n"
                     "  es-ngd bench --functions rosenbrock --structures up:1,up:4 --solvers cma\n"
                     "  es-ngd bench --suite bbob --functions f8,f10 --dims 5,20 --instances 1-5\n"
                     "  es-ngd bench --suite structured --dims 100,1000 --jobs 2 --plot-x both\n"
                     "results: a table on the terminal; results.json, summary.csv, runs.csv, one\n"
                     "convergence_<function>_p<dim>.png per function and dimension and ert_ratio.png in --out.")
    what = parser.add_argument_group("what to run")
    what.add_argument("--suite", choices=("builtin", "structured", "bbob"),
                      help="built-in generic functions (default), the structured problems, or COCO's bbob "
                           "suite (needs: pip install coco-experiment)")
    what.add_argument("--functions", metavar="LIST",
                      help="comma-separated function names, or 'all'; built-in: "
                           + ", ".join(_builtin_names()) + "; structured (also allowed with the built-in "
                           "suite): " + ", ".join(_structured_names()) + "; bbob: f1..f24 or their names")
    what.add_argument("--dims", metavar="LIST",
                      help="comma-separated dimensions, e.g. 10,40,100 (bbob: 2,3,5,10,20,40)")
    what.add_argument("--structures", metavar="LIST",
                      help="es_ngd structures, comma-separated (default: dense,diag,up:2,fit; structured suite: "
                           "fit), each optionally with NGDES options as @OPTION=VALUE (e.g. dense@step_size=xnes); "
                           "'fit': each structured problem's own structures (hier:2,3 on arrow, …); "
                           "'none' for no es_ngd run")
    what.add_argument("--solvers", metavar="LIST",
                      help="pycma variants: cma, sep-cma, vkd-cma (default: all three); "
                           "'none' for no pycma run")
    what.add_argument("--seeds", metavar="N|LIST",
                      help="N (seeds 1..N), a list 3,7,11 or a range 1-5; seeds are >= 1 "
                           "(pycma reads 0 as 'clock')")
    what.add_argument("--instances", metavar="LIST",
                      help="bbob problem instances, e.g. 1-5 "
                           "(built-in functions: the seed picks the instance)")
    what.add_argument("--budget", metavar="EVALS_PER_DIM", type=float,
                      help="evaluations per dimension (a run in p dimensions gets budget·p)")
    what.add_argument("--target", type=float, help="success when f − f_opt <= target (default 1e-8)")
    what.add_argument("--sigma0", type=float,
                      help="initial step size for every solver (default 2; x0 ~ U[-4,4]^p)")
    what.add_argument("--max-seconds", type=float, metavar="S",
                      help="wall-time limit per run, for every solver (default: none): at p = 1000 a full "
                           "covariance's generations cost 10–20× a structured one's")
    what.add_argument("--quick", action="store_true",
                      help="quick defaults for every option not given (the default when no option is given)")
    how = parser.add_argument_group("how to run")
    how.add_argument("--jobs", type=int, metavar="N",
                     help="parallel runs (processes); default: the number of CPUs")
    how.add_argument("--out", metavar="DIR", help="where results go (default: ./es-ngd-bench)")
    how.add_argument("--plot-x", choices=("evaluations", "seconds", "both"), default="evaluations",
                     help="x axis of the convergence plots (seconds: convergence_<function>_p<dim>_seconds.png)")


def _builtin_names() -> list[str]:
    from es_ngd.bench.functions import FUNCTIONS

    return list(FUNCTIONS)


def _structured_names() -> list[str]:
    from es_ngd.bench.structured import STRUCTURED

    return list(STRUCTURED)


# -- option parsing ------------------------------------------------------------------------------

def split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """``"1,2,5"`` or ``"1-5"`` (or a mix) as integers."""
    values: list[int] = []
    for item in split_list(text):
        low, dash, high = item.partition("-")
        try:
            values.extend(range(int(low), int(high) + 1) if dash and low else [int(item)])
        except ValueError:
            raise UsageError(f"--{what}: {item!r} is not an integer or a range like 1-5") from None
    if not values:
        raise UsageError(f"--{what}: give at least one value")
    return tuple(dict.fromkeys(values))  # keep the order, drop repeats


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"5"`` → seeds 1..5; a list or range → those seeds."""
    text = text.strip()
    if text.isdigit():
        count = int(text)
        if count < 1:
            raise UsageError("--seeds: the number of seeds must be at least 1")
        return tuple(range(1, count + 1))
    seeds = parse_int_list(text, "seeds")
    if min(seeds) < 1:
        raise UsageError(f"--seeds: seeds must be >= 1 (pycma reads seed 0 as 'seed from the clock'), "
                         f"got {seeds}")
    return seeds


def split_structures(text: str) -> tuple[str, ...]:
    """Split ``"dense,up:2,hier:2,3"`` into structures: an integer after a comma belongs to the
    structure before it while that one still takes arguments (``NAME:N,N`` is one structure), and
    commas inside parentheses are part of a structure (``kron(dense,dense)``)."""
    from es_ngd.bench.config import FIT
    from es_ngd.bench.solvers import NGD_PREFIX, validate_solver_name
    from es_ngd.groups import STRUCTURES

    structures: list[str] = []
    for item in _split_outside_parentheses(text):
        if item.partition("@")[0].isdigit() and structures:  # "hier:2,3@rank_one=false": 3 is an argument
            name, _, args = structures[-1].partition(":")
            spec = STRUCTURES.get(name)
            if spec is not None and args and len(args.split(",")) < spec.arity:
                structures[-1] += "," + item
                continue
        structures.append(item)
    for structure in structures:
        if structure == FIT:
            continue
        try:
            validate_solver_name(NGD_PREFIX + structure)
        except ValueError as error:
            raise UsageError(f"--structures: {error}") from None
    return tuple(structures)


def _split_outside_parentheses(text: str) -> list[str]:
    pieces, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += char
    return [piece.strip() for piece in [*pieces, current] if piece.strip()]


def parse_functions(text: str, suite: str) -> tuple[str, ...]:
    if suite == "bbob":
        from es_ngd.bench.bbob import BBOB_FUNCTIONS, bbob_function_id

        if text.strip() == "all":
            return tuple(str(k) for k in BBOB_FUNCTIONS)
        try:
            return tuple(dict.fromkeys(str(bbob_function_id(name)) for name in split_list(text)))
        except ValueError as error:
            raise UsageError(f"--functions: {error}") from None
    from es_ngd.bench.functions import FUNCTIONS
    from es_ngd.bench.structured import STRUCTURED

    own = STRUCTURED if suite == "structured" else FUNCTIONS
    names = list(own) if text.strip() == "all" else split_list(text)
    unknown = [name for name in names if name not in FUNCTIONS and name not in STRUCTURED]
    if unknown or not names:
        raise UsageError(f"--functions: unknown function(s) {unknown}; valid functions: "
                         f"{', '.join(FUNCTIONS)}; structured: {', '.join(STRUCTURED)} "
                         "(or 'all' for the suite's own; --suite bbob for the COCO functions)")
    if suite == "structured" and (generic := [name for name in names if name not in STRUCTURED]):
        raise UsageError(f"--functions: {generic} are generic functions; give them with the built-in suite, "
                         "which takes structured problems too")
    return tuple(dict.fromkeys(names))


def parse_solvers(text: str) -> tuple[str, ...]:
    from es_ngd.bench.solvers import CMA_VARIANTS

    if text.strip() == "none":
        return ()
    names = split_list(text)
    unknown = [name for name in names if name not in CMA_VARIANTS]
    if unknown or not names:
        raise UsageError(f"--solvers: unknown solver(s) {unknown}; valid solvers: {', '.join(CMA_VARIANTS)} "
                         "(or 'none'; es_ngd structures go in --structures)")
    return tuple(dict.fromkeys(names))


def make_config(args: argparse.Namespace) -> Any:
    """A checked :class:`~es_ngd.bench.config.BenchConfig` from parsed options (UsageError if invalid)."""
    from es_ngd.bench.config import FULL, QUICK, BenchConfig

    chose_something = any(getattr(args, name) is not None for name in WHAT_TO_RUN)
    quick = args.quick or not chose_something
    suite = args.suite or "builtin"
    base = dict((QUICK if quick else FULL)[suite])

    settings: dict[str, Any] = {"suite": suite, "quick": quick, **base}
    if args.functions is not None:
        settings["functions"] = parse_functions(args.functions, suite)
    if args.dims is not None:
        settings["dims"] = parse_int_list(args.dims, "dims")
        settings["structured_dims"] = ()  # --dims applies to every problem
    if args.structures is not None:
        none = args.structures.strip() == "none"
        settings["structures"] = () if none else split_structures(args.structures)
    if args.solvers is not None:
        settings["cma_solvers"] = parse_solvers(args.solvers)
    if args.seeds is not None:
        settings["seeds"] = parse_seeds(args.seeds)
    if args.instances is not None:
        if suite != "bbob":
            raise UsageError("--instances applies to --suite bbob only "
                             "(built-in functions: the seed is the instance)")
        settings["instances"] = parse_int_list(args.instances, "instances")
    for name in ("budget", "target", "sigma0", "max_seconds"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a positive finite number, got {value!r}")
    if args.budget is not None:
        settings["budget_per_dim"] = args.budget
    if args.target is not None:
        settings["target"] = args.target
    if args.sigma0 is not None:
        settings["sigma0"] = args.sigma0
    if args.max_seconds is not None:
        settings["max_seconds"] = args.max_seconds

    config = BenchConfig(**settings)
    _check_consistency(config)
    jobs = args.jobs if args.jobs is not None else os.cpu_count() or 1
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    return replace(config, jobs=jobs, out=args.out or "es-ngd-bench")


def _check_consistency(config: Any) -> None:
    if min(config.dims) < 1:
        raise UsageError(f"--dims: dimensions must be >= 1, got {config.dims}")
    if config.suite == "bbob":
        from es_ngd.bench.bbob import BBOB_DIMENSIONS, import_cocoex

        bad = [d for d in config.dims if d not in BBOB_DIMENSIONS]
        if bad:
            raise UsageError(f"--dims: bbob is defined in dimensions "
                             f"{', '.join(map(str, BBOB_DIMENSIONS))}; got {bad}")
        if min(config.instances) < 1:
            raise UsageError(f"--instances: bbob instances are >= 1, got {config.instances}")
        try:
            import_cocoex()
        except ImportError as error:
            raise UsageError(str(error)) from None
    _check_structured(config)
    if not config.solvers:
        raise UsageError("nothing to run: --structures none and --solvers none leave no solver")
    for dim in config.dims:
        smallest_population = 4 + int(3 * math.log(dim))
        if config.budget(dim) < smallest_population:
            raise UsageError(f"--budget {config.budget_per_dim:g} gives {config.budget(dim)} evaluations "
                             f"in p = {dim}: not even one generation of {smallest_population}")


def _check_structured(config: Any) -> None:
    """Structured problems exist in their dimensions, and every structure given runs on some problem."""
    from es_ngd.bench.config import FIT
    from es_ngd.bench.structured import check_dimension

    for function, dim in config.problems():
        if config.suite_of(function) == "structured":
            try:
                check_dimension(function, dim)
            except ValueError as error:
                raise UsageError(f"--dims: {error}") from None
    skipped = set(config.skipped())
    nowhere = [s for s in config.structures
               if s != FIT and all((s, function, dim) in skipped for function, dim in config.problems())]
    if nowhere:
        raise UsageError(f"--structures: {nowhere} can be built for none of the problems "
                         "(kron(…) needs a kron problem, whose x is a matrix; block sizes must add up to p)")


# -- running ---------------------------------------------------------------------------------------

def describe(config: Any, runs: int) -> str:
    """One paragraph saying exactly what runs (printed first, so a user knows what the table means)."""
    kind = "quick benchmark" if config.quick else "benchmark"
    functions = config.functions
    if config.suite == "bbob":
        from es_ngd.bench.bbob import bbob_label

        functions = [bbob_label(int(f)) for f in functions]
    problems = (f"instances {_span(config.instances)} × seeds {_span(config.seeds)}" if config.suite == "bbob"
                else f"seeds {_span(config.seeds)}")
    generic = [f for f in functions if config.suite == "bbob" or config.suite_of(f) != "structured"]
    lines = [f"es-ngd {kind}: {runs} runs on {config.jobs} process(es)"]
    if generic:
        lines.append(f"  functions: {', '.join(generic)} ({config.suite}, generic), "
                     f"dims: {', '.join(map(str, config.dims))}")
    structured = [f for f in functions if f not in generic]
    if structured:
        from es_ngd.bench.structured import fitting_structures

        dims = config.structured_dims or config.dims
        fits = [f"{f} ({', '.join(fitting_structures(f, dims[0])) or '—'})" for f in structured]
        lines.append(f"  structured problems (fitting structure at p = {dims[0]}): {', '.join(fits)}; "
                     f"dims: {', '.join(map(str, dims))}")
    skipped = config.skipped()
    if skipped:
        lines.append(f"  not run: {len(skipped)} (structure, problem) pair(s) whose group cannot be built there, "
                     "e.g. " + ", ".join(f"{s} on {f} p={d}" for s, f, d in skipped[:3]))
    return ("\n".join(lines) + "\n"
            f"  {problems}\n"
            f"  solvers: {', '.join(config.solvers)}\n"
            f"  budget: {config.budget_per_dim:g} evaluations per dimension"
            + (f" and {config.max_seconds:g} s per run" if config.max_seconds else "") + "; "
            f"target: f − f_opt <= {config.target:g}; "
            f"sigma0 = {config.sigma0:g}, x0 ~ U[-4, 4]^p (same for every solver)")


def _span(values: tuple[int, ...]) -> str:
    if len(values) > 2 and list(values) == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ",".join(map(str, values))


def run(args: argparse.Namespace) -> int:
    """Run the benchmark chosen by ``args``; returns the exit code (0, or 1 if a run raised)."""
    config = make_config(args)
    from rich.console import Console

    from es_ngd.bench.plots import plot_convergence, plot_ert_ratios
    from es_ngd.bench.report import rich_table, summarise, write_json, write_runs_csv, write_summary_csv
    from es_ngd.bench.runner import run_all

    # emoji=False: rich would otherwise draw the structure "up:2" as an emoji (":up:")
    console = Console(emoji=False)
    if not console.is_terminal:
        console = Console(emoji=False, width=160)  # a pipe or file: do not squeeze the table into 80 columns
    specs = config.runs()
    console.print(describe(config, len(specs)), highlight=False, markup=False)
    out_dir = Path(config.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    argv = getattr(args, "argv", None) or sys.argv[1:]  # es_ngd.cli.main stores the argv it parsed
    metadata = run_metadata(config, list(argv))
    start = time.perf_counter()
    records = _run_with_progress(console, specs, config.jobs, run_all)
    seconds = time.perf_counter() - start

    rows = summarise(records, config.solvers)
    metadata["duration_seconds"] = round(seconds, 2)
    write_json(out_dir / "results.json", metadata, rows, records)
    write_summary_csv(out_dir / "summary.csv", rows)
    write_runs_csv(out_dir / "runs.csv", records)
    plot_x = getattr(args, "plot_x", None) or "evaluations"
    axes = ("evaluations", "seconds") if plot_x == "both" else (plot_x,)
    plots = [path for x_axis in axes
             for path in plot_convergence(records, out_dir, config.solvers, config.target, x_axis=x_axis)]
    plots += [path for path in [plot_ert_ratios(rows, out_dir)] if path is not None]

    title = (f"evaluations and wall time to f − f_opt <= {config.target:g} "
             f"(budget {config.budget_per_dim:g}·p; ERT / CMA-ES < 1: fewer evaluations, time / CMA-ES < 1: "
             "less wall time)")
    console.print(rich_table(rows, title))
    console.print(describe_machine(metadata["machine"]), highlight=False, markup=False)
    errors = sum(row.errors for row in rows)
    if errors:
        console.print(f"[red]{errors} run(s) raised an error; "
                      f"see stop_reasons in {out_dir / 'runs.csv'}[/red]")
    console.print(f"{len(specs)} runs in {seconds:.1f} s; wrote results.json, summary.csv, runs.csv and "
                  f"{len(plots)} plot(s) to {out_dir}/", highlight=False, markup=False)
    return 1 if errors else 0


def _run_with_progress(console: Any, specs: list[Any], jobs: int, run_all: Any) -> list[Any]:
    """``run_all`` under a rich progress bar (drawn only on a terminal: nothing in pipes or logs)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not console.is_terminal, transient=True) as progress:
        task = progress.add_task("running", total=len(specs))

        def on_done(record: Any) -> None:
            spec, mark = record.spec, "✓" if record.success else "✗"
            progress.update(task, advance=1, description=f"{spec.solver} {record.function_label} "
                                                         f"p={spec.dim} seed {spec.seed} {mark}")

        return run_all(specs, jobs=jobs, on_done=on_done)
