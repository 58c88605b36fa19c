"""Checkpoints: save an :class:`~es_ngd.strategy.NGDES` to a file and resume it bit for bit.

The file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) written with no pickled objects:

- one entry per array of the state (the mean, every array of the factor dict, ``xbest``), stored in
  the backend's dtype so that a resumed run computes with exactly the same numbers;
- one entry ``metadata``: UTF-8 JSON with the format version, structure string, dimension, population
  size, seed, options, backend, counters, termination history and a SHA-256 checksum of the arrays
  and of the rest of the metadata (files from before es_ngd 0.2 have an arrays-only checksum, and load).

Loading uses ``allow_pickle=False`` and ``json``, so a checkpoint can never execute code. The noise of
generation ``t`` is keyed by ``(seed, asks)`` (see :func:`es_ngd.backend.noise_rows`), so the seed and
the ask counter are the whole random-number state: nothing else needs saving for an exact resume.

Two decisions worth knowing:

- **Pending ask.** A checkpoint taken between ``ask`` and ``tell`` records the state *before* that
  ask. After loading, call ``ask()`` again (with the same ``n``): it returns the same candidates.
- **Custom shaping.** A callable ``shaping`` option is code, so it is not stored; the file records
  its name, and :func:`load` refuses with :class:`CheckpointError` unless it is passed again,
  ``NGDES.load(path, shaping=my_shaper)``.

Writes are atomic: the archive goes to a temporary file in the same directory, is flushed and
fsynced, then renamed over the target with :func:`os.replace`. A crash mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from es_ngd.strategy import NGDES

FORMAT_NAME = "es_ngd.checkpoint"
#: 2: the step-size controller's state and the evolution path (es_ngd 0.2); 3: an unset ``lr_sigma`` means
#: SNES's rate under csa/tpa (es_ngd 0.3; before, η_B under every controller, which loading keeps for older files)
FORMAT_VERSION = 3
METADATA_KEY = "metadata"
_ARRAY_REF = "__array__"  # {"__array__": "state/mean"} in the JSON stands for that archive entry
_CHECKSUM_PREFIX = "sha256+metadata:"  # the checksum covers the arrays and the metadata JSON


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit: truncated, corrupted, newer, or mismatched."""


# -- state dict ------------------------------------------------------------------------------------
def state_dict(es: NGDES) -> dict[str, Any]:
    """Everything needed to resume ``es`` exactly, as a nested dict of JSON values and numpy arrays."""
    s, backend = es.state, es.backend
    pending = es._pending
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "structure": es.group.structure,
        "dim": es.dim,
        "popsize": es.popsize,
        "seed": es.seed,
        "options": _options_to_json(es),
        "backend": {"name": backend.name, "dtype": str(backend.dtype).replace("torch.", ""),
                    "device": str(backend.device)},
        "state": {
            "mean": _host_copy(backend, s.mean),
            "sigma": s.sigma,
            "factor": {key: _host_copy(backend, value) for key, value in s.factor.items()},
            "iterations": s.iterations,
            "evaluations": s.evaluations,
            # a pending ask is dropped: the state is the one before it, so ask() re-draws it
            "asks": pending[0].ask_id if pending is not None else s.asks,
            "step_bound_hits": s.step_bound_hits,
            "fbest": s.fbest,
            "xbest": None if s.xbest is None else np.array(s.xbest, copy=True),
            "evals_best": s.evals_best,
            "step_size": {key: _host_copy(backend, value) if backend.is_array(value) else value
                          for key, value in s.step_size.items()},
            "evolution_path": None if s.evolution_path is None else _host_copy(backend, s.evolution_path),
        },
        "termination": es.termination.state_dict(),
        "numerical_error": es._numerical_error,
    }


def _host_copy(backend: Any, array: Any) -> np.ndarray:
    # order="K" keeps the memory layout: a transposed (Fortran-order) factor array must come back
    # transposed, because BLAS sums in a different order for it and the resumed run would differ in
    # the last bit. np.save stores Fortran order too, and torch.as_tensor keeps it.
    return np.array(backend.to_numpy(array), copy=True, order="K")


def load_state_dict(es: NGDES, sd: dict[str, Any]) -> None:
    """Put the search state of ``sd`` into ``es`` (which must have the same structure and dimension).

    The seed and population size come from ``sd``; the options stay those of ``es`` (but for an unset
    ``lr_sigma`` and a file older than format 3: see :func:`_keep_the_saved_sigma_rate`).
    Raises :class:`CheckpointError` (leaving ``es`` untouched) if ``sd`` does not fit.
    """
    try:
        seed, popsize, state, termination = _restore(es, sd)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"the checkpoint does not describe a valid state: {type(err).__name__}: {err}") from err
    es.seed, es.popsize, es.state, es.termination = seed, popsize, state, termination
    es._numerical_error = sd.get("numerical_error")
    es._pending = None
    es._stop_cache = None
    _keep_the_saved_sigma_rate(es, sd)


def _keep_the_saved_sigma_rate(es: NGDES, sd: dict[str, Any]) -> None:
    """A run saved by es_ngd 0.2 or older goes on at the η_σ it ran with.

    Before format 3 an unset ``lr_sigma`` meant η_B under every controller; since es_ngd 0.3 it means SNES's
    rate under csa and tpa. So for an older file and an unset ``lr_sigma``, ``es`` takes η_B, written out in
    its options (a later save stores it), and a warning says so.
    """
    if sd["format_version"] >= 3 or es.options.lr_sigma is not None or es.options.step_size == "xnes":
        return
    rate = es.rates.factor
    warnings.warn(f"checkpoint format {sd['format_version']} predates es_ngd 0.3's default η_σ: the run keeps "
                  f"the rate it was saved with, lr_sigma={rate!r} (η_B)", UserWarning, stacklevel=4)
    es.options = dataclasses.replace(es.options, lr_sigma=rate)
    es.rates = dataclasses.replace(es.rates, sigma=rate)


def _restore(es: NGDES, sd: dict[str, Any]) -> tuple[int, int, Any, Any]:
    """Validate ``sd`` against ``es`` and build (seed, popsize, state, termination) from it."""
    from es_ngd.strategy import State  # strategy imports this module for its thin wrappers
    from es_ngd.termination import Termination

    _check_header(sd)
    if sd["structure"] != es.group.structure or sd["dim"] != es.dim:
        raise CheckpointError(f"the checkpoint is for structure {sd['structure']!r} in dimension {sd['dim']}, "
                              f"but this strategy has {es.group.structure!r} in dimension {es.dim}")
    saved = sd["state"]
    template = es.group.identity()
    factor_arrays = saved["factor"]
    if set(factor_arrays) != set(template) or any(
            tuple(np.shape(factor_arrays[k])) != tuple(template[k].shape) for k in template):
        raise CheckpointError(f"the checkpoint's factor arrays {sorted(factor_arrays)} do not fit "
                              f"the group {es.group!r}")
    # Every value is checked before anything is built: a crafted or hand-edited file must fail here,
    # with a message, not generations later inside the linear algebra.
    backend = es.backend
    mean = _finite_vector(saved["mean"], es.dim, "mean")
    factor = {}
    for key, value in factor_arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or not np.isfinite(value).all():
            raise CheckpointError(f"the checkpoint's factor array {key!r} must hold finite floating-point numbers")
        factor[key] = backend.asarray(value)
    with np.errstate(divide="ignore", invalid="ignore"):  # log 0 of a singular factor: refused just below
        logdet = es.group.logdet(factor)
    if not math.isfinite(logdet):
        raise CheckpointError("the checkpoint's factor is singular (its log-determinant is not finite)")
    sigma = saved["sigma"]
    if not _is_real(sigma) or not (math.isfinite(sigma) and sigma > 0):
        raise CheckpointError(f"the checkpoint's sigma must be positive and finite, got {sigma!r}")
    counters = {name: saved[name] for name in ("iterations", "evaluations", "asks", "step_bound_hits")}
    counters["evals_best"] = saved.get("evals_best", 0)  # format 1 and early format 2 files lack it
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in counters.values()):
        raise CheckpointError(f"the checkpoint's counters must be non-negative integers, got {counters}")
    if not (counters["step_bound_hits"] <= counters["iterations"] <= counters["asks"]
            and counters["evals_best"] <= counters["evaluations"]):
        raise CheckpointError(f"the checkpoint's counters contradict each other: {counters}")
    popsize = sd["popsize"]
    if isinstance(popsize, bool) or not isinstance(popsize, int):
        raise CheckpointError(f"the checkpoint's popsize must be an integer, got {popsize!r}")
    popsize = es._check_popsize(popsize)
    fbest, xbest = saved["fbest"], saved["xbest"]
    if not _is_real(fbest) or math.isnan(fbest) or fbest == -math.inf:
        raise CheckpointError(f"the checkpoint's fbest must be a number or inf, got {fbest!r}")
    if xbest is not None:
        xbest = np.array(_finite_vector(xbest, es.dim, "xbest"), copy=True)
    if (xbest is None) != (fbest == math.inf):
        raise CheckpointError(f"the checkpoint's xbest and fbest disagree (fbest {fbest!r} with "
                              f"{'no' if xbest is None else 'an'} xbest)")
    numerical_error = sd.get("numerical_error")
    if numerical_error is not None and not isinstance(numerical_error, str):
        raise CheckpointError(f"the checkpoint's numerical_error must be a string or null, got {numerical_error!r}")

    step_size, evolution_path = _restore_controllers(es, sd)
    state = State(mean=backend.asarray(mean), sigma=float(sigma), factor=factor, **counters, fbest=float(fbest),
                  xbest=xbest, step_size=step_size, evolution_path=evolution_path)
    termination = Termination(es.options, es.dim, popsize)
    termination.load_state_dict(sd["termination"])
    seed = sd["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CheckpointError(f"the checkpoint's seed must be a non-negative integer, got {seed!r}")
    return seed, popsize, state, termination


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite_vector(value: Any, dim: int, name: str) -> np.ndarray:
    if (not isinstance(value, np.ndarray) or value.shape != (dim,) or value.dtype.kind not in "fi"
            or not np.isfinite(value).all()):
        raise CheckpointError(f"the checkpoint's {name} must be {dim} finite numbers, got "
                              f"{type(value).__name__} of shape {np.shape(value)}")
    return value


def _restore_controllers(es: NGDES, sd: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The step-size controller's state and the evolution path, checked against ``es``'s options.

    Format 1 (es_ngd 0.1) predates both: they start afresh, with a warning that says so.
    """
    backend, saved = es.backend, sd["state"]
    fresh_path = None if es.rank_one is None else es.rank_one.initial_path(backend, es.dim)
    if sd["format_version"] < 2:
        warnings.warn(f"checkpoint format {sd['format_version']} (es_ngd 0.1) has no step-size controller state: "
                      f"the run goes on with step_size={es.options.step_size!r} from a fresh state (0.1 used the "
                      "'xnes' rule; build NGDES(..., step_size='xnes') and load_state_dict() to keep it)",
                      UserWarning, stacklevel=4)
        return es.step_size.initial_state(backend), fresh_path
    template = es.step_size.initial_state(backend)
    control = saved["step_size"]
    if not isinstance(control, dict) or set(control) != set(template):
        kept = sorted(control) if isinstance(control, dict) else control
        raise CheckpointError(f"the checkpoint's step-size state {kept!r} does not fit "
                              f"step_size={es.options.step_size!r} (which keeps {sorted(template)}); "
                              "load it with the step_size it was saved with")
    restored = {}
    for key, value in control.items():
        if isinstance(value, np.ndarray):
            if value.shape != (es.dim,) or not np.isfinite(value).all():
                raise CheckpointError(f"the checkpoint's step-size entry {key!r} must be {es.dim} finite numbers")
            value = backend.asarray(value)
        elif value is not None and not (isinstance(value, float) and math.isfinite(value)):
            raise CheckpointError(f"the checkpoint's step-size entry {key!r} must be a finite number, got {value!r}")
        restored[key] = value
    path = saved["evolution_path"]
    if (path is None) != (fresh_path is None):
        raise CheckpointError(f"the checkpoint was saved with rank_one={path is not None}, "
                              f"but this strategy has rank_one={fresh_path is not None}")
    if path is not None:
        if np.shape(path) != (es.dim,) or not np.isfinite(path).all():
            raise CheckpointError(f"the checkpoint's evolution path must be {es.dim} finite numbers")
        path = backend.asarray(path)
    return restored, path


def _options_to_json(es: NGDES) -> dict[str, Any]:
    # field by field, not dataclasses.asdict: that deep-copies, and a shaping callable need not be copyable
    options = {f.name: getattr(es.options, f.name) for f in dataclasses.fields(es.options)}
    if callable(options["shaping"]):
        # code is not data: record the name, and make load() ask for the function again
        options["shaping"] = {"callable": getattr(options["shaping"], "__qualname__", repr(options["shaping"]))}
    if options["shape"] is None:
        options["shape"] = getattr(es.group, "shape", None)  # a matrix-shaped x0 sets it on the group
    if options["shape"] is not None:
        options["shape"] = [int(n) for n in options["shape"]]
    if options["device"] is not None:
        options["device"] = str(options["device"])
    # the kind in use, not the option: "auto" would switch kinds (and trajectories) with the device
    options["noise"] = es.backend.noise
    return options


def _check_header(sd: dict[str, Any]) -> None:
    if not isinstance(sd, dict) or sd.get("format") != FORMAT_NAME:
        raise CheckpointError("not an es_ngd checkpoint (no 'format': 'es_ngd.checkpoint' entry)")
    version = sd.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"invalid checkpoint format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"the checkpoint has format version {version}, newer than the {FORMAT_VERSION} "
                              "this es_ngd reads; upgrade es_ngd to load it")


# -- files -----------------------------------------------------------------------------------------
def save(es: NGDES, path: str | os.PathLike[str]) -> Path:
    """Write ``es`` to ``path`` atomically (the previous file survives any failure); returns the path."""
    return write(state_dict(es), path)


def write(sd: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a state dict to ``path`` atomically: temp file in the same directory, fsync, rename."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    metadata = _extract_arrays(sd, "", arrays)
    metadata["checksum"] = _checksum(arrays, metadata)
    arrays[METADATA_KEY] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            _write_archive(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)  # make the rename itself durable
    return path


def _write_archive(file: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    np.savez(file, **arrays)  # plain numeric arrays only (checked in _extract_arrays): nothing is pickled


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not possible on every platform (Windows); the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The state dict stored in ``path``; :class:`CheckpointError` if it is not a sound checkpoint."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        metadata = json.loads(arrays.pop(METADATA_KEY).tobytes().decode())
    except Exception as err:  # zip, npy, json and unicode errors all mean the same thing here
        raise CheckpointError(f"{path} is not a readable es_ngd checkpoint (truncated or corrupted?): "
                              f"{type(err).__name__}: {err}") from err
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: the checkpoint metadata is not a JSON object")
    _check_header(metadata)  # before the checksum, so a newer format gets the clearer message
    stored = metadata.pop("checksum", None)
    # files written before the metadata was covered carry an arrays-only checksum ("sha256:"); they
    # still load, and _restore checks every value they hold either way
    covers_metadata = isinstance(stored, str) and stored.startswith(_CHECKSUM_PREFIX)
    if metadata.get("format_version", 1) >= 2 and not covers_metadata:  # only es_ngd 0.1 wrote the old kind
        raise CheckpointError(f"{path}: a format-{metadata['format_version']} checkpoint must carry a checksum of "
                              "its metadata too; this one was edited or corrupted")
    if stored != _checksum(arrays, metadata if covers_metadata else None):
        raise CheckpointError(f"{path}: checksum mismatch, the checkpoint's "
                              f"{'metadata or arrays are' if covers_metadata else 'arrays are'} corrupted or edited")
    try:
        return _insert_arrays(metadata, arrays)
    except KeyError as err:
        raise CheckpointError(f"{path}: the metadata refers to a missing array {err}") from None


def load(path: str | os.PathLike[str], *, shaping: Any = None, device: str | None = None) -> NGDES:
    """A new :class:`~es_ngd.strategy.NGDES` in the state saved at ``path``.

    ``shaping`` re-supplies a custom shaping function (required when one was used; see the module
    docstring); ``device`` moves a torch run to another device (exact resume is promised only on the
    device that saved it).
    """
    from es_ngd.strategy import NGDES

    sd = read(path)
    if not isinstance(sd.get("options"), dict):
        raise CheckpointError(f"{path}: the checkpoint has no options entry")
    options = dict(sd["options"])
    if isinstance(options.get("shaping"), dict) and shaping is None:
        raise CheckpointError(
            f"{path} was saved with a custom shaping function ({options['shaping'].get('callable')}), which a "
            "checkpoint does not store; pass it again: NGDES.load(path, shaping=your_function)")
    if shaping is not None:
        options["shaping"] = shaping
    try:
        if options.get("shape") is not None:
            options["shape"] = tuple(options["shape"])
        backend = sd["backend"]
        options["dtype"] = backend["dtype"]
        options["device"] = device if device is not None else (
            backend["device"] if backend["name"] == "torch" else None)
        es = NGDES(sd["state"]["mean"], sd["state"]["sigma"], structure=sd["structure"], popsize=sd["popsize"],
                   seed=sd["seed"], backend=backend["name"], **options)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot rebuild the strategy it describes: {type(err).__name__}: {err}") from err
    load_state_dict(es, sd)
    return es


def resume(es: NGDES, path: str | os.PathLike[str], *, seed: int | None = None,
           popsize: int | None = None) -> bool:
    """Load the checkpoint at ``path`` into ``es`` if the file exists; returns whether it did.

    ``seed`` and ``popsize``, when given, must match the checkpoint's (a run resumed with another
    seed would not be the run that was saved); the options stay those of ``es``.
    """
    if not Path(path).exists():
        return False
    sd = read(path)
    for name, given in (("seed", seed), ("popsize", popsize)):
        if given is not None and given != sd.get(name):
            raise CheckpointError(f"{path} was saved by a run with {name}={sd.get(name)!r}, but {name}={given!r} "
                                  "was passed; delete the file to start afresh")
    load_state_dict(es, sd)
    return True


# -- array <-> JSON plumbing -----------------------------------------------------------------------
def _extract_arrays(value: Any, name: str, arrays: dict[str, np.ndarray]) -> Any:
    """A copy of ``value`` with every numpy array replaced by a reference to an archive entry."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"checkpoint entry {name!r} is an object array; only numeric arrays are stored")
        contiguous = value.flags.c_contiguous or value.flags.f_contiguous
        arrays[name] = value if contiguous else np.ascontiguousarray(value)
        return {_ARRAY_REF: name}
    if isinstance(value, dict):
        return {key: _extract_arrays(item, f"{name}/{key}" if name else key, arrays) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_extract_arrays(item, f"{name}/{i}", arrays) for i, item in enumerate(value)]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


def _insert_arrays(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_ARRAY_REF}:
            return arrays[value[_ARRAY_REF]]
        return {key: _insert_arrays(item, arrays) for key, item in value.items()}
    if isinstance(value, list):
        return [_insert_arrays(item, arrays) for item in value]
    return value


def _checksum(arrays: dict[str, np.ndarray], metadata: dict[str, Any] | None = None) -> str:
    """SHA-256 of the arrays and (unless ``None``: the arrays-only checksum of older files) of the
    metadata without its checksum, as canonical JSON: JSON floats round-trip exactly, so the reader
    re-serialises what it parsed to the same bytes the writer hashed."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        if name == METADATA_KEY:
            continue
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    if metadata is None:
        return "sha256:" + digest.hexdigest()
    covered = {key: value for key, value in metadata.items() if key != "checksum"}
    digest.update(b"metadata|" + json.dumps(covered, sort_keys=True, separators=(",", ":")).encode())
    return _CHECKSUM_PREFIX + digest.hexdigest()


__all__ = ["FORMAT_VERSION", "CheckpointError", "load", "load_state_dict", "read", "resume", "save", "state_dict",
           "write"]
