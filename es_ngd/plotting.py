"""Draw a :class:`~es_ngd.logger.Logger` directory to a PNG, the way ``cma.plot()`` users expect.

Panels, all against evaluations: best-ever, generation-best and median f on a log scale; σ; the
condition number of the precision S; and, when logged, the mean's first coordinates. Restarts show
as dotted vertical lines. matplotlib (``pip install 'es-ngd[bench]'``) is imported only here, with the
Agg backend, so it works without a display.

From the command line: ``es-ngd plot LOGDIR [-o out.png]`` (this module supplies that subcommand's
:func:`add_arguments` and :func:`run`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from es_ngd.logger import META_FILE, read_log

DEFAULT_OUTPUT = "plot.png"


def plot_log(directory: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> Path:
    """Draw ``directory/log.csv`` to ``output`` (default ``directory/plot.png``); returns the path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install 'es-ngd[bench]'") from err

    directory = Path(directory)
    log = read_log(directory)
    if log["evaluations"].size == 0:
        raise ValueError(f"{directory / 'log.csv'} has no rows yet")
    output = Path(output) if output is not None else directory / DEFAULT_OUTPUT
    evals = log["evaluations"]
    mean_columns = sorted((c for c in log if c.startswith("mean_")), key=lambda c: int(c.split("_")[1]))

    panels = 4 if mean_columns else 3
    fig, axes = plt.subplots(panels, 1, figsize=(8, 2.6 * panels), sharex=True, squeeze=False)
    axes = axes[:, 0]

    # f on a log scale: shift by the best value seen when f reaches zero or below (as cma.plot does)
    f_columns = [("f_best_ever", "best so far in the run"), ("f_best", "generation best"), ("f_median", "median")]
    f_min = np.nanmin(np.concatenate([log[c] for c, _ in f_columns]))
    shift = 0.0 if f_min > 0 else f_min - 1e-12 * max(1.0, abs(f_min))
    for column, label in f_columns:
        axes[0].semilogy(evals, np.maximum(log[column] - shift, 1e-300), label=label)
    axes[0].set_ylabel("f" if shift == 0.0 else f"f − ({shift:.6g})")
    axes[0].legend(loc="upper right", fontsize="small")

    axes[1].semilogy(evals, log["sigma"], color="tab:green")
    axes[1].set_ylabel("σ")
    axes[2].semilogy(evals, log["condition"], color="tab:red")
    axes[2].set_ylabel("condition of S")
    if mean_columns:
        for column in mean_columns:
            axes[3].plot(evals, log[column], label=f"mean[{column.split('_')[1]}]")
        axes[3].set_ylabel("mean")
        axes[3].legend(loc="upper right", fontsize="small", ncol=min(4, len(mean_columns)))
    axes[-1].set_xlabel("evaluations")

    restarts = evals[1:][np.diff(log["run"]) != 0] if "run" in log else []
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        for x in restarts:
            ax.axvline(x, color="grey", linestyle=":", linewidth=1)
    fig.suptitle(_title(directory))
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    plt.close(fig)
    return output


def _title(directory: Path) -> str:
    try:
        meta = json.loads((directory / META_FILE).read_text())
        return f"es_ngd: {meta['structure']}, p = {meta['dim']}, seed {meta['seed']}"
    except (OSError, ValueError, KeyError):
        return f"es_ngd: {directory.name}"


# -- the `es-ngd plot` subcommand ------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``es-ngd plot``."""
    parser.add_argument("logdir", help="a directory written by es_ngd.Logger (holds log.csv)")
    parser.add_argument("-o", "--output", default=None, help=f"PNG file to write (default: LOGDIR/{DEFAULT_OUTPUT})")


def run(args: argparse.Namespace) -> int:
    """Run ``es-ngd plot``; returns the exit status."""
    try:
        path = plot_log(args.logdir, args.output)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"es-ngd plot: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


__all__ = ["add_arguments", "plot_log", "run"]
