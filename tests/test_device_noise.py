"""Device noise (``noise="device"``, es_ngd/device_noise.py) on torch's CPU device: the code path CUDA runs.

What must hold: any subset of rows regenerates the full draw, the numbers are standard normal
(within Monte Carlo error), runs resume bit for bit, tell works chunk by chunk without holding the
noise, edited rows are still caught without a copy, and float32 and a tensor-valued vectorised
objective work end to end. (Ray workers get such rows themselves: tests/test_ray.py.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_groups_structured import SMALL, build

import es_ngd
from es_ngd import population as population_module
from es_ngd.device_noise import device_normals, stream_key
from es_ngd.evaluators import SerialEvaluator, VectorizedEvaluator
from es_ngd.strategy import _noise_statistics

torch = pytest.importorskip("torch")


def normals(rows, dim: int, seed: int = 3, ask_id: int = 7, dtype=None):
    return device_normals(seed, ask_id, rows, dim, dtype=dtype or torch.float64, device="cpu")


@pytest.mark.parametrize("dim", [1, 2, 7, 64, 301])
def test_any_subset_of_rows_regenerates_the_full_draw(dim):
    full = normals(np.arange(200), dim)
    assert full.shape == (200, dim) and full.dtype == torch.float64
    rng = np.random.default_rng(dim)
    for rows in ([0], [199], rng.permutation(200)[:37], np.array([5, 5, 3]), np.arange(17, 150)):
        assert torch.equal(normals(rows, dim), full[torch.as_tensor(rows)])
    # float32 values are the float64 ones (both have float32 resolution: see the module docstring)
    assert torch.equal(normals(np.arange(200), dim, dtype=torch.float32), full.to(torch.float32))


def test_keys_separate_seeds_asks_and_rows():
    assert len({stream_key(seed, ask) for seed in range(30) for ask in range(30)}) == 900
    a, b, c = normals(np.arange(50), 40), normals(np.arange(50), 40, ask_id=8), normals(np.arange(50), 40, seed=4)
    for other in (b, c):
        assert not torch.equal(a, other)
        assert abs(float(np.corrcoef(a.numpy().ravel(), other.numpy().ravel())[0, 1])) < 4 / math.sqrt(2000)
    # rows are not shifted copies of each other (the counters of neighbouring rows are consecutive)
    assert abs(float(np.corrcoef(a[:-1, -1].numpy(), a[1:, 0].numpy())[0, 1])) < 0.5


def test_moments_are_those_of_a_standard_normal():
    n, dim = 40_000, 9
    z = normals(np.arange(n), dim).numpy()
    mean, cov = z.mean(0), np.cov(z, rowvar=False)
    assert np.abs(mean).max() < 4.5 / math.sqrt(n)
    assert np.abs(np.diag(cov) - 1).max() < 4.5 * math.sqrt(2 / n)
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 4.5 / math.sqrt(n)
    flat = z.ravel()
    # the tails: a fourth moment of 3 and the right share beyond 2 and 3 standard deviations
    assert abs((flat**4).mean() - 3.0) < 0.1
    assert abs((np.abs(flat) > 2).mean() - 0.0455) < 0.003
    assert abs((np.abs(flat) > 3).mean() - 0.0027) < 0.0008


def test_noise_option_is_checked():
    with pytest.raises(ValueError, match="needs backend='torch'"):
        es_ngd.NGDES(np.zeros(3), 1.0, noise="device")
    with pytest.raises(ValueError, match="option noise must be"):
        es_ngd.NGDES(np.zeros(3), 1.0, backend="torch", noise="gpu")
    assert es_ngd.NGDES(np.zeros(3), 1.0, backend="torch").backend.noise == "host"  # the default on the CPU


def sphere_rows(X):
    return (X * X).sum(1)


def run(generations: int, *, structure: str = "up:2", p: int = 12, seed: int = 5, **options):
    es = es_ngd.NGDES(np.linspace(-1, 1, p), 0.7, structure=structure, seed=seed, backend="torch", noise="device",
                      **options)
    for _ in range(generations):
        X = es.ask()
        es.tell(X, sphere_rows(X))
    return es


@pytest.mark.parametrize("options", [{}, {"mirrored": True}, {"step_size": "tpa"}, {"dtype": "float32"}])
def test_save_and_resume_is_bit_for_bit(tmp_path, options):
    es = run(6, **options)
    es.save(tmp_path / "run.npz")
    resumed = es_ngd.NGDES.load(tmp_path / "run.npz")
    assert resumed.backend.noise == "device"
    for a in (es, resumed):
        for _ in range(4):
            X = a.ask()
            a.tell(X, sphere_rows(X))
    assert torch.equal(es.mean, resumed.mean) and es.sigma == resumed.sigma
    assert all(torch.equal(es.state.factor[k], resumed.state.factor[k]) for k in es.state.factor)


def test_population_rows_and_subsets_agree():
    es = run(2, structure="dense", p=9, step_size="tpa")
    population = es.ask_population(20)
    rows = population.candidates()
    assert not population.regenerable and population.chunks() == [slice(0, 20)]
    assert torch.equal(population.candidates([3, 0, 17]), rows[[3, 0, 17]])
    z, x = population.chunk(slice(0, 20))
    assert torch.equal(x, rows)  # tell's recomputation is ask's rows, bit for bit
    # the test pair of two-point adaptation sits in rows 0 and 1, mirrored
    own = normals([0], 9, es.seed, population.ask_id)[0]
    assert torch.allclose(z[0], -z[1]) and torch.allclose(z[0].norm(), own.norm())


@pytest.mark.parametrize(("structure", "p"), [*SMALL[::3], ("dense", 6), ("diag", 6), ("up:2", 6), ("low:1", 6)])
def test_noise_statistics_summed_over_chunks_equal_the_whole(structure, p):
    # the direction is linear in G and its shift together, so chunked tells are exact up to rounding
    group = build(structure, p, "torch")
    rng = np.random.default_rng(p)
    z = torch.as_tensor(rng.standard_normal((11, p)))
    fitness = rng.standard_normal(11)
    for utilities in (es_ngd.shaping.xnes_utilities(fitness), rng.standard_normal(11)):
        whole = _noise_statistics(group, [z], utilities, fitness)
        parts = _noise_statistics(group, [z[:4], z[4:5], z[5:]], utilities, fitness)
        for a, b in zip(whole[:2], parts[:2], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        assert parts[2] == pytest.approx(whole[2], rel=1e-12)
        for key in whole[3]:
            torch.testing.assert_close(whole[3][key], parts[3][key], rtol=1e-10, atol=1e-12)


def test_tell_in_chunks_follows_the_same_search(monkeypatch):
    one_chunk = run(8, p=10)
    monkeypatch.setattr(population_module, "CHUNK_ENTRIES", 30)  # 3 rows of p = 10 per chunk
    chunked = run(8, p=10)
    assert len(chunked.ask_population().chunks()) == math.ceil(chunked.popsize / 3)
    torch.testing.assert_close(chunked.mean, one_chunk.mean, rtol=1e-9, atol=1e-12)
    assert chunked.sigma == pytest.approx(one_chunk.sigma, rel=1e-9)


def test_edited_rows_are_caught_without_a_copy(monkeypatch):
    monkeypatch.setattr(population_module, "CHUNK_ENTRIES", 36)  # several chunks: the edit is in the last one
    es = run(2)
    X = es.ask()
    assert X is es.ask_population.__self__._pending[2]  # the population's own tensor: no copy
    state = es.state
    X[-1, 3] += 1e-9
    with pytest.raises(ValueError, match=rf"rows \[{len(X) - 1}\] of X are not those of the last ask"):
        es.tell(X, sphere_rows(X))
    assert es.state is state
    injected = es_ngd.NGDES(np.linspace(-1, 1, 12), 0.7, structure="up:2", seed=5, backend="torch", noise="device",
                            accept_injected=True)
    Y = injected.ask()
    Y[2] = 0.0
    injected.tell(Y, sphere_rows(Y))
    assert injected.state.iterations == 1 and injected.state.fbest == 0.0


@pytest.mark.parametrize("structure", ["diag", "up:2", "dense"])
def test_float32_tensor_objective_converges(structure):
    # a vectorised objective that takes the (n, p) tensor and returns a tensor, in float32 throughout
    def ellipsoid(X):
        assert isinstance(X, torch.Tensor) and X.dtype == torch.float32
        return (X * X * weights).sum(1)

    p = 20
    weights = torch.logspace(0, 3, p, dtype=torch.float32)
    result = es_ngd.optimize(ellipsoid, np.full(p, 1.0), 0.5, structure=structure, seed=2, vectorized=True,
                             backend="torch", dtype="float32", noise="device", ftarget=1e-6, maxfevals=60_000)
    assert result.fbest <= 1e-6, result.stop
    assert np.isfinite(result.mean).all() and result.sigma > 0


def test_vectorized_evaluator_hands_over_the_population_itself():
    es = run(1)
    population = es.ask_population()
    seen = []
    VectorizedEvaluator(lambda X: seen.append(X) or sphere_rows(X)).evaluate(population)
    assert seen[0] is population.candidates()
    # a serial objective still gets copies of rows (it may edit them)
    rows = []
    SerialEvaluator(lambda x: rows.append(x) or float((x * x).sum())).evaluate(population)
    assert rows[0].data_ptr() != population.candidates()[0].data_ptr()

