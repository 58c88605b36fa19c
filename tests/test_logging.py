"""The per-generation CSV Logger and the plots drawn from it."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from problems import sphere

import es_ngd
from es_ngd import plotting
from es_ngd.logger import COLUMNS, read_log

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_optimize_writes_one_row_per_generation(tmp_path):
    result = es_ngd.optimize(sphere, np.ones(5), 0.5, seed=1, maxiter=30, logger=es_ngd.Logger(tmp_path))
    log = read_log(tmp_path)
    assert tuple(log)[: len(COLUMNS)] == COLUMNS
    assert np.array_equal(log["iteration"], np.arange(1, 31))
    popsize = es_ngd.NGDES(np.ones(5), 0.5).popsize
    assert np.array_equal(log["evaluations"], popsize * np.arange(1, 31))
    assert (np.diff(log["f_best_ever"]) <= 0).all() and log["f_best_ever"][-1] == result.fbest
    assert (log["f_best"] >= log["f_best_ever"]).all() and (log["f_median"] >= log["f_best"]).all()
    assert log["sigma"][-1] == result.sigma and (log["condition"] >= 1).all()
    assert (log["elapsed_s"] >= 0).all() and (log["run"] == 0).all()


def test_logger_as_an_ask_tell_callback_with_and_without_fitness(tmp_path):
    es = es_ngd.NGDES(np.ones(4), 0.5, structure="up:1", seed=3)
    with_fitness, without = es_ngd.Logger(tmp_path / "a", mean_coordinates=2), es_ngd.Logger(tmp_path / "b")
    for _ in range(10):
        X = es.ask()
        F = [sphere(x) for x in X]
        es.tell(X, F)
        with_fitness(es, F)
        without(es)
    a, b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    for column in ("f_best", "f_median", "sigma", "evaluations"):  # both ways see the same generation
        assert np.array_equal(a[column], b[column])
    assert np.array_equal(a["mean_1"][-1:], es.mean[1:2]) and "mean_0" not in b


def test_restarts_log_cumulative_evaluations_and_the_run(tmp_path):
    result = es_ngd.optimize(sphere, np.ones(3), 0.5, seed=1, maxiter=15, restarts=2, logger=es_ngd.Logger(tmp_path))
    log = read_log(tmp_path)
    assert list(np.unique(log["run"])) == [0, 1, 2]
    assert (np.diff(log["evaluations"]) > 0).all() and log["evaluations"][-1] == result.evaluations


def test_a_logger_joining_a_resumed_run_keeps_the_earlier_rows(tmp_path):
    path = tmp_path / "run.npz"

    def stop_at_12(es):
        if es.state.iterations == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        es_ngd.optimize(sphere, np.ones(4), 0.5, seed=2, maxiter=20, checkpoint=path, checkpoint_every=10,
                        logger=es_ngd.Logger(tmp_path / "log"), callback=stop_at_12)
    es_ngd.optimize(sphere, np.ones(4), 0.5, seed=2, maxiter=20, checkpoint=path,
                    logger=es_ngd.Logger(tmp_path / "log"))
    assert np.array_equal(read_log(tmp_path / "log")["iteration"], np.arange(1, 21))  # 11, 12 not twice


def test_plot_draws_a_png_with_the_expected_panels(tmp_path):
    es_ngd.optimize(sphere, np.ones(4), 0.5, seed=1, maxiter=40, restarts=1,
                    logger=es_ngd.Logger(tmp_path, mean_coordinates=3))
    out = plotting.plot_log(tmp_path)
    assert out == tmp_path / "plot.png" and out.read_bytes()[:8] == PNG_SIGNATURE
    assert out.stat().st_size > 10_000


def test_plot_subcommand_interface(tmp_path, capsys):
    es_ngd.optimize(sphere, np.ones(4), 0.5, seed=1, maxiter=20, logger=es_ngd.Logger(tmp_path / "log"))
    parser = argparse.ArgumentParser()
    plotting.add_arguments(parser)
    assert plotting.run(parser.parse_args([str(tmp_path / "log"), "-o", str(tmp_path / "out.png")])) == 0
    assert (tmp_path / "out.png").read_bytes()[:8] == PNG_SIGNATURE
    assert str(tmp_path / "out.png") in capsys.readouterr().out
    assert plotting.run(parser.parse_args([str(tmp_path / "nothing-here")])) == 1
    assert "no log.csv" in capsys.readouterr().err


def test_es_ngd_plot_command(tmp_path):
    cli = pytest.importorskip("es_ngd.cli")
    es_ngd.optimize(sphere, np.ones(4), 0.5, seed=1, maxiter=20, logger=es_ngd.Logger(tmp_path))
    assert cli.main(["plot", str(tmp_path), "-o", str(tmp_path / "cli.png")]) == 0
    assert (tmp_path / "cli.png").read_bytes()[:8] == PNG_SIGNATURE
