"""Matrix groups for the precision factor B, chosen by a structure string (see README, "Structures").

Grammar: ``NAME`` or ``NAME:N[,N…]`` with integer arguments, e.g. ``"diag"``, ``"up:2"``.
Each entry of :data:`STRUCTURES` says how many integer arguments its name takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from es_ngd.backend import Backend, get_backend
from es_ngd.groups.base import Factor, MatrixGroup, Tangent
from es_ngd.groups.block_lower import BlockLower
from es_ngd.groups.block_upper import BlockUpper
from es_ngd.groups.dense import Dense
from es_ngd.groups.diagonal import Diagonal
from es_ngd.groups.triangular import LowerTriangular, UpperTriangular


@dataclass(frozen=True)
class StructureSpec:
    """One row of the structure grammar."""

    usage: str  # how it is written, e.g. "up:K"
    arity: int  # number of integer arguments after the colon
    build: Callable[..., MatrixGroup]  # build(dim, backend, *int_args)
    summary: str


STRUCTURES: dict[str, StructureSpec] = {
    "dense": StructureSpec("dense", 0, Dense, "any invertible B (xNES); O(np² + p³)"),
    "diag": StructureSpec("diag", 0, Diagonal, "diagonal B (SNES); O(np)"),
    "tril": StructureSpec("tril", 0, LowerTriangular, "lower-triangular B (Cholesky of the precision)"),
    "triu": StructureSpec("triu", 0, UpperTriangular, "upper-triangular B"),
    "up": StructureSpec("up:K", 1, BlockUpper,
                        "block upper-triangular: covariance low-rank (K) + diagonal; O(nKp + K²p)"),
    "low": StructureSpec("low:K", 1, BlockLower,
                         "block lower-triangular: precision low-rank (K) + diagonal; O(nKp + K²p)"),
}


def _valid() -> str:
    return ", ".join(repr(spec.usage) for spec in STRUCTURES.values())


def parse_structure(structure: str) -> tuple[str, tuple[int, ...]]:
    """Split ``"NAME:N,N"`` into its name and integer arguments, with a clear error if malformed."""
    if not isinstance(structure, str):
        raise TypeError(f"structure must be a string or a MatrixGroup, got {type(structure).__name__}")
    name, _, args = structure.strip().partition(":")
    spec = STRUCTURES.get(name)
    if spec is None:
        raise ValueError(f"unknown structure {structure!r}; valid structures: {_valid()}")
    parts = [a.strip() for a in args.split(",")] if args else []
    if len(parts) != spec.arity:
        raise ValueError(f"structure {structure!r}: {name!r} takes {spec.arity} integer argument(s), "
                         f"written {spec.usage!r}")
    try:
        values = tuple(int(a) for a in parts)
    except ValueError:
        raise ValueError(f"structure {structure!r}: arguments must be integers, written {spec.usage!r}") from None
    return name, values


def make_group(structure: str | MatrixGroup, dim: int, backend: str | Backend = "numpy", **kwargs: Any) -> MatrixGroup:
    """The group named by ``structure`` for dimension ``dim`` (or ``structure`` itself, checked)."""
    backend = get_backend(backend)
    if isinstance(structure, MatrixGroup):
        if structure.dim != dim:
            raise ValueError(f"group {structure!r} has dimension {structure.dim}, but x0 has {dim}")
        return structure
    if kwargs:
        raise TypeError(f"unexpected structure options {sorted(kwargs)} for {structure!r}")
    name, args = parse_structure(structure)
    return STRUCTURES[name].build(dim, backend, *args)


__all__ = ["STRUCTURES", "Factor", "MatrixGroup", "StructureSpec", "Tangent", "make_group", "parse_structure"]
