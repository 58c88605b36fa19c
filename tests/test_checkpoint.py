"""Checkpoints: exact resume on every backend, rejection of bad files, atomic writes, optimize(checkpoint=)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from problems import ellipsoid

import es_ngd
from es_ngd import checkpoint
from es_ngd.checkpoint import CheckpointError

P = 6


def objective(x) -> float:
    return ellipsoid(np.asarray(x, dtype=float) - 1.0, condition=1e3)


def step(es: es_ngd.NGDES) -> np.ndarray:
    """One generation; returns the candidates as host bytes-comparable array."""
    X = es.ask()
    es.tell(X, [objective(x) for x in X])
    return np.asarray(X)


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_state(a: es_ngd.NGDES, b: es_ngd.NGDES) -> None:
    to_np = a.backend.to_numpy
    assert same_bits(to_np(a.state.mean), to_np(b.state.mean))
    assert a.state.sigma == b.state.sigma
    assert a.state.factor.keys() == b.state.factor.keys()
    for key in a.state.factor:
        assert same_bits(to_np(a.state.factor[key]), to_np(b.state.factor[key])), key
    for name in ("iterations", "evaluations", "asks", "step_bound_hits", "fbest"):
        assert getattr(a.state, name) == getattr(b.state, name), name
    assert same_bits(a.state.xbest, b.state.xbest)
    assert a.state.step_size.keys() == b.state.step_size.keys()
    for key, value in a.state.step_size.items():  # the controller's state (p_σ, TPA's s and last mean)
        other = b.state.step_size[key]
        if a.backend.is_array(value):
            assert same_bits(to_np(value), to_np(other)), key
        else:
            assert value == other, key
    assert (a.state.evolution_path is None) == (b.state.evolution_path is None)
    if a.state.evolution_path is not None:
        assert same_bits(to_np(a.state.evolution_path), to_np(b.state.evolution_path))


CONTROLLERS = [{"step_size": "csa", "rank_one": False}, {"step_size": "csa", "rank_one": True},
               {"step_size": "tpa", "rank_one": True}, {"step_size": "xnes", "rank_one": False}]


@pytest.mark.parametrize("control", CONTROLLERS, ids=lambda c: f"{c['step_size']}-r{int(c['rank_one'])}")
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("structure", ["diag", "dense", "up:2"])
def test_save_load_continue_is_bit_identical(tmp_path, backend, structure, control):
    if backend == "torch":
        pytest.importorskip("torch")
    make = lambda: es_ngd.NGDES(np.zeros(P), 0.7, structure=structure, seed=11, backend=backend,  # noqa: E731
                                **control)
    uninterrupted, interrupted = make(), make()
    for _ in range(8):
        step(uninterrupted)
        step(interrupted)
    path = tmp_path / "run.npz"
    interrupted.save(path)
    del interrupted
    resumed = es_ngd.NGDES.load(path)
    assert resumed.backend.name == backend and resumed.group.structure == structure
    assert_same_state(uninterrupted, resumed)
    for _ in range(25):  # every candidate of the rest of the run, to the bit
        assert same_bits(step(uninterrupted), step(resumed))
    assert_same_state(uninterrupted, resumed)
    assert resumed.stop() == uninterrupted.stop()
    assert resumed.termination.state_dict() == uninterrupted.termination.state_dict()


@pytest.mark.parametrize("structure", ["kron(dense,diag)", "hier:1,1", "toeplitz"])
def test_other_structures_resume_exactly(tmp_path, structure):
    x0 = np.zeros((2, 3)) if structure.startswith("kron") else np.zeros(P)  # kron: a matrix-shaped x0
    a, b = (es_ngd.NGDES(x0, 0.7, structure=structure, seed=4) for _ in range(2))
    for _ in range(5):
        step(a)
        step(b)
    a.save(tmp_path / "run.npz")
    resumed = es_ngd.NGDES.load(tmp_path / "run.npz")
    for _ in range(10):
        assert same_bits(step(b), step(resumed))


def test_state_dict_round_trip_in_memory():
    a = es_ngd.NGDES(np.zeros(P), 0.7, structure="low:2", seed=5)
    for _ in range(5):
        step(a)
    b = es_ngd.NGDES(np.ones(P), 3.0, structure="low:2", seed=99)  # different start: all overwritten
    b.load_state_dict(a.state_dict())
    assert b.seed == 5
    for _ in range(10):
        assert same_bits(step(a), step(b))


def test_checkpoint_between_ask_and_tell_records_the_state_before_the_ask(tmp_path):
    es = es_ngd.NGDES(np.zeros(P), 0.7, structure="dense", seed=2)
    step(es)
    asked = np.asarray(es.ask())
    es.save(tmp_path / "pending.npz")
    resumed = es_ngd.NGDES.load(tmp_path / "pending.npz")
    assert resumed.state.iterations == 1
    with pytest.raises(RuntimeError):  # the pending ask is not part of the checkpoint
        resumed.tell(asked, np.zeros(len(asked)))
    assert same_bits(resumed.ask(), asked)  # asking again draws the same candidates


def test_load_refuses_a_different_structure_or_dimension():
    sd = es_ngd.NGDES(np.zeros(P), 0.5, structure="diag", seed=1).state_dict()
    with pytest.raises(CheckpointError, match="structure"):
        es_ngd.NGDES(np.zeros(P), 0.5, structure="dense", seed=1).load_state_dict(sd)
    with pytest.raises(CheckpointError, match="dimension"):
        es_ngd.NGDES(np.zeros(P + 1), 0.5, structure="diag", seed=1).load_state_dict(sd)


def saved_run(tmp_path, generations=4):
    es = es_ngd.NGDES(np.zeros(P), 0.7, structure="up:2", seed=3)
    for _ in range(generations):
        step(es)
    path = tmp_path / "run.npz"
    es.save(path)
    return es, path


def test_truncated_files_are_rejected_and_left_untouched(tmp_path):
    _, path = saved_run(tmp_path)
    data = path.read_bytes()
    for size in (0, 10, len(data) // 3, len(data) // 2, len(data) - 1):
        truncated = tmp_path / f"truncated{size}.npz"
        truncated.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match="truncated or corrupted"):
            es_ngd.NGDES.load(truncated)
        assert truncated.read_bytes() == data[:size]


def test_every_corrupted_byte_is_rejected_or_harmless(tmp_path):
    """Flip bytes all over the file: loading raises CheckpointError, or (a byte zip does not check,
    such as a timestamp) gives back exactly the saved state. Never a silently different state."""
    es, path = saved_run(tmp_path)
    data = path.read_bytes()
    corrupted = tmp_path / "corrupted.npz"
    rejected = 0
    for position in range(0, len(data), 3):
        flipped = bytearray(data)
        flipped[position] ^= 0x5A
        corrupted.write_bytes(bytes(flipped))
        try:
            loaded = es_ngd.NGDES.load(corrupted)
        except CheckpointError:
            rejected += 1
            continue
        assert_same_state(es, loaded)
    assert rejected > 0.8 * len(range(0, len(data), 3))


def test_array_data_corruption_is_caught_by_the_checksum(tmp_path):
    """Change an array consistently (so zip's own CRC passes): the checksum in the metadata catches it."""
    _, path = saved_run(tmp_path)
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["state/mean"] = arrays["state/mean"] + 1e-12
    np.savez(tmp_path / "tampered.npz", **arrays)
    with pytest.raises(CheckpointError, match="checksum"):
        es_ngd.NGDES.load(tmp_path / "tampered.npz")


def test_a_newer_format_version_is_rejected(tmp_path):
    es, _ = saved_run(tmp_path)
    sd = es.state_dict()
    sd["format_version"] = checkpoint.FORMAT_VERSION + 1
    newer = checkpoint.write(sd, tmp_path / "newer.npz")
    before = newer.read_bytes()
    with pytest.raises(CheckpointError, match="newer"):
        es_ngd.NGDES.load(newer)
    assert newer.read_bytes() == before


def test_not_a_checkpoint_and_object_arrays(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(CheckpointError):
        es_ngd.NGDES.load(tmp_path / "other.npz")
    np.savez(tmp_path / "pickled.npz", metadata=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError):  # allow_pickle=False: never unpickled
        es_ngd.NGDES.load(tmp_path / "pickled.npz")
    with pytest.raises(FileNotFoundError):
        es_ngd.NGDES.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("missing", ["options", "backend", "state", "termination", "popsize", "seed", "structure"])
def test_a_checkpoint_missing_an_entry_is_rejected(tmp_path, missing):
    sd = es_ngd.NGDES(np.zeros(3), 0.5, seed=1).state_dict()
    del sd[missing]
    with pytest.raises(CheckpointError):
        es_ngd.NGDES.load(checkpoint.write(sd, tmp_path / "incomplete.npz"))


def test_a_crash_mid_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    es, path = saved_run(tmp_path)
    before = path.read_bytes()
    step(es)

    def crash_after_partial_output(file, arrays):
        file.write(b"PK\x03\x04 partial archive")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(checkpoint, "_write_archive", crash_after_partial_output)
    with pytest.raises(OSError, match="simulated"):
        es.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]  # no temporary file left behind
    assert es_ngd.NGDES.load(path).state.iterations == 4


def test_metadata_is_plain_json_with_the_documented_fields(tmp_path):
    _, path = saved_run(tmp_path)
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(archive["metadata"].tobytes().decode())
        names = set(archive.files)
    for key in ("format_version", "structure", "dim", "popsize", "seed", "options", "backend", "termination",
                "checksum"):
        assert key in meta
    assert meta["structure"] == "up:2" and meta["dim"] == P and meta["seed"] == 3
    assert {"state/mean", "state/factor/A", "state/xbest"} <= names


def test_a_custom_shaping_function_must_be_passed_again(tmp_path):
    def shaping(f):
        ranks = np.argsort(np.argsort(f))
        return (len(f) - 1) / 2 - ranks

    shaping_scaled = lambda f: shaping(f) / len(f) ** 2  # noqa: E731
    es = es_ngd.NGDES(np.zeros(P), 0.7, seed=1, shaping=shaping_scaled)
    step(es)
    es.save(tmp_path / "custom.npz")
    with pytest.raises(CheckpointError, match="shaping"):
        es_ngd.NGDES.load(tmp_path / "custom.npz")
    resumed = es_ngd.NGDES.load(tmp_path / "custom.npz", shaping=shaping_scaled)
    assert same_bits(step(resumed), step(es))


class Interrupt(Exception):
    pass


def test_optimize_resumes_from_its_checkpoint_exactly(tmp_path):
    path = tmp_path / "opt.npz"
    kwargs = dict(structure="dense", seed=7, maxiter=40, checkpoint_every=5)

    def recording(log):
        def f(x):
            log.append(np.array(x, copy=True))
            return objective(x)
        return f

    uninterrupted_log: list[np.ndarray] = []
    uninterrupted = es_ngd.optimize(recording(uninterrupted_log), np.zeros(P), 0.7, **kwargs)

    def interrupt_at_23(es):
        if es.state.iterations == 23:
            raise Interrupt

    first_log: list[np.ndarray] = []
    with pytest.raises(Interrupt):
        es_ngd.optimize(recording(first_log), np.zeros(P), 0.7, checkpoint=path, callback=interrupt_at_23, **kwargs)
    assert checkpoint.read(path)["state"]["iterations"] == 20  # the last periodic save
    second_log: list[np.ndarray] = []
    resumed = es_ngd.optimize(recording(second_log), np.zeros(P), 0.7, checkpoint=path, **kwargs)

    n = es_ngd.NGDES(np.zeros(P), 0.7).popsize
    assert len(first_log) == 23 * n and len(second_log) == 20 * n
    assert all(same_bits(a, b) for a, b in zip(first_log, uninterrupted_log[: 23 * n], strict=True))
    assert all(same_bits(a, b) for a, b in zip(second_log, uninterrupted_log[20 * n:], strict=True))
    assert same_bits(resumed.xbest, uninterrupted.xbest) and resumed.fbest == uninterrupted.fbest
    assert same_bits(resumed.mean, uninterrupted.mean) and resumed.sigma == uninterrupted.sigma
    assert (resumed.evaluations, resumed.iterations) == (uninterrupted.evaluations, uninterrupted.iterations)
    assert checkpoint.read(path)["state"]["iterations"] == 40  # saved at the end


def test_optimize_refuses_a_checkpoint_from_another_run(tmp_path):
    path = tmp_path / "opt.npz"
    es_ngd.optimize(objective, np.zeros(P), 0.7, seed=1, maxiter=3, checkpoint=path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="seed"):
        es_ngd.optimize(objective, np.zeros(P), 0.7, seed=2, maxiter=6, checkpoint=path)
    with pytest.raises(CheckpointError, match="structure"):
        es_ngd.optimize(objective, np.zeros(P), 0.7, structure="dense", maxiter=6, checkpoint=path)
    path.write_bytes(before[: len(before) // 2])
    with pytest.raises(CheckpointError):  # a corrupted checkpoint is never silently replaced by a fresh run
        es_ngd.optimize(objective, np.zeros(P), 0.7, seed=1, maxiter=6, checkpoint=path)
    assert path.read_bytes() == before[: len(before) // 2]
