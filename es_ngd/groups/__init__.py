"""Matrix groups for the precision factor B, chosen by a structure string (see README, "Structures").

Grammar: ``NAME`` or ``NAME:N[,N…]`` with integer arguments, e.g. ``"diag"``, ``"up:2"``.
Each entry of :data:`STRUCTURES` says how many integer arguments its name takes. The Kronecker
product is written ``kron(F1,F2)`` with two other structures as factors, e.g. ``"kron(tril,low:1)"``;
it needs the matrix shape of x (``shape=(rows, cols)``, from a matrix-shaped x0 or the ``shape``
option): ``F1`` acts on the columns' index (``cols×cols``), ``F2`` on the rows' (``rows×rows``).
The direct product of groups on consecutive blocks is ``product(F1@N1,F2@N2,…)``, e.g.
``"product(kron(tril,tril)@4x3,diag@4)"`` (a Kronecker block gives its matrix shape ``ROWSxCOLS``).
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
from es_ngd.groups.hierarchical import HierarchicalLower, HierarchicalUpper
from es_ngd.groups.kronecker import Kronecker
from es_ngd.groups.product import Product
from es_ngd.groups.sparse_cholesky import SparseCholesky
from es_ngd.groups.toeplitz import Toeplitz
from es_ngd.groups.triangular import LowerTriangular, UpperTriangular


@dataclass(frozen=True)
class StructureSpec:
    """One row of the structure grammar."""

    usage: str  # how it is written, e.g. "up:K"
    arity: int  # number of integer arguments after the colon (for kron: of factor structures; product: -1, any)
    build: Callable[..., MatrixGroup]  # build(dim, backend, *int_args)
    summary: str


def _check_shape(shape: Any, dim: int) -> tuple[int, int]:
    try:
        rows, cols = (int(n) for n in shape)
        valid = (rows, cols) == tuple(shape) and rows >= 1 and cols >= 1
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"shape must be two positive integers (rows, cols), got {shape!r}")
    if rows * cols != dim:
        raise ValueError(f"shape {(rows, cols)} has rows·cols = {rows * cols}, but x has p = {dim} entries")
    return rows, cols


def _build_kronecker(dim: int, backend: Backend, first: str, second: str, *,
                     shape: tuple[int, int] | None = None) -> Kronecker:
    """``kron(F1,F2)`` for x of matrix shape ``(rows, cols)``: ``F1`` is ``cols×cols``, ``F2`` ``rows×rows``."""
    if shape is None:
        raise ValueError(f"structure 'kron({first},{second})' needs the matrix shape of x: pass a "
                         "matrix-shaped x0 (rows × cols) or the option shape=(rows, cols)")
    rows, cols = _check_shape(shape, dim)
    return Kronecker(make_group(first, cols, backend), make_group(second, rows, backend))


def _build_product(dim: int, backend: Backend, *blocks: str) -> Product:
    """``product(F1@N1,…)``: each block ``STRUCTURE@N`` (or ``kron(…)@ROWSxCOLS``) built on its own."""
    groups = []
    for block in blocks:
        structure, _, size = block.rpartition("@")
        rows, _, cols = size.partition("x")
        try:
            shape = (int(rows), int(cols)) if cols else None
            size_n = shape[0] * shape[1] if shape else int(size)
        except ValueError:
            raise ValueError(f"product block {block!r}: the size after '@' must be an integer N or ROWSxCOLS, "
                             "written 'product(F1@N1,F2@N2,...)'") from None
        if size_n < 1:
            raise ValueError(f"product block {block!r}: the size must be positive")
        try:
            groups.append(make_group(structure, size_n, backend, **({"shape": shape} if shape else {})))
        except ValueError as err:
            raise ValueError(f"product block {block!r}: {err}") from None
    if sum(group.dim for group in groups) != dim:
        raise ValueError(f"structure 'product(...)': the block sizes add up to {sum(g.dim for g in groups)}, "
                         f"but x has p = {dim} entries")
    return Product(groups)


STRUCTURES: dict[str, StructureSpec] = {
    "dense": StructureSpec("dense", 0, Dense, "any invertible B (xNES); O(np² + p³)"),
    "diag": StructureSpec("diag", 0, Diagonal, "diagonal B (SNES); O(np)"),
    "tril": StructureSpec("tril", 0, LowerTriangular, "lower-triangular B (Cholesky of the precision)"),
    "triu": StructureSpec("triu", 0, UpperTriangular, "upper-triangular B"),
    "up": StructureSpec("up:K", 1, BlockUpper,
                        "block upper-triangular: covariance low-rank (K) + diagonal; O(nKp + K²p)"),
    "low": StructureSpec("low:K", 1, BlockLower,
                         "block lower-triangular: precision low-rank (K) + diagonal; O(nKp + K²p)"),
    "hier": StructureSpec("hier:K1,K2", 2, HierarchicalLower,
                          "hierarchical lower: dense K1 and K2 blocks around a diagonal one, lower couplings; "
                          "O((K1+K2)np)"),
    "hier-up": StructureSpec("hier-up:K1,K2", 2, HierarchicalUpper,
                             "hierarchical upper: the transpose pattern of hier:K1,K2; O((K1+K2)np)"),
    "kron": StructureSpec("kron(F1,F2)", 2, _build_kronecker,
                          "Kronecker product B₁ ⊗ B₂ of two structures, for matrix-shaped x (needs shape); "
                          "O(np^{3/2}) with dense factors"),
    "toeplitz": StructureSpec("toeplitz", 0, Toeplitz,
                              "lower-triangular Toeplitz B (stationary correlations); O(np log p) by FFT"),
    "sparse": StructureSpec("sparse:N1,N2", 2, SparseCholesky,
                            "sparse Cholesky: diagonal N1 blocks, dense N2×N1 and triangular N2 blocks, "
                            "p = 2·N1 + N2; O(n(N1·N2 + N2²) + N2³)"),
    "product": StructureSpec("product(F1@N1,F2@N2,...)", -1, _build_product,
                             "direct product of groups on consecutive blocks of Nj coordinates (a kron block "
                             "takes its shape ROWSxCOLS); the blocks' costs"),
}


def _valid() -> str:
    return ", ".join(repr(spec.usage) for spec in STRUCTURES.values())


def split_top_level(text: str) -> list[str]:
    """Split at the commas outside parentheses; a piece that starts with a digit is an integer argument
    of the piece before it (``"hier:1,2@5"``), since structure names never start with one."""
    pieces, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            pieces.append(current.strip())
            current = ""
        else:
            current += char
    pieces.append(current.strip())
    merged: list[str] = []
    for piece in pieces:
        if piece[:1].isdigit() and merged:
            merged[-1] += f",{piece}"
        else:
            merged.append(piece)
    return merged


def _parse_product(structure: str) -> tuple[str, tuple[str, ...]]:
    """Split ``"product(F1@N1,F2@N2,...)"`` into its blocks ``"Fj@Nj"``, each structure checked."""
    written = "written 'product(F1@N1,F2@N2,...)'"
    if not structure.endswith(")"):
        raise ValueError(f"structure {structure!r}: {written}")
    blocks = split_top_level(structure[len("product("):-1])
    if not all(blocks):
        raise ValueError(f"structure {structure!r}: an empty block; {written}")
    for block in blocks:
        inner, at, size = block.rpartition("@")
        if not at or not inner or not size:
            raise ValueError(f"structure {structure!r}: block {block!r} needs a size, {written} "
                             "(a kron block: kron(F1,F2)@ROWSxCOLS)")
        if inner.strip().startswith("product"):
            raise ValueError(f"structure {structure!r}: a product block cannot itself be a product(...)")
        try:
            parse_structure(inner)
        except ValueError as err:
            raise ValueError(f"structure {structure!r}: block {block!r}: {err}") from None
    return "product", tuple(blocks)


def _parse_kronecker(structure: str) -> tuple[str, tuple[str, str]]:
    """Split ``"kron(F1,F2)"`` into its two factor structures, each checked by :func:`parse_structure`.

    A factor's integer arguments contain commas too (``"kron(hier:1,2,diag)"``), so a comma-separated
    piece that is an integer belongs to the factor before it; names never are integers.
    """
    depth = 0
    for char in structure:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            break
    if depth != 0:
        raise ValueError(f"structure {structure!r}: unbalanced parentheses")
    head, _, rest = structure.partition("(")
    if head.strip() != "kron" or not rest.endswith(")"):
        raise ValueError(f"structure {structure!r}: only kron takes parenthesised factors, written 'kron(F1,F2)'")
    inner = rest[:-1]
    if "(" in inner:
        raise ValueError(f"structure {structure!r}: a kron factor cannot itself be a kron(...) structure")
    factors: list[str] = []
    for piece in (piece.strip() for piece in inner.split(",")):
        if piece.lstrip("+-").isdigit() and factors:
            factors[-1] += f",{piece}"
        else:
            factors.append(piece)
    if len(factors) != 2 or not all(factors):
        raise ValueError(f"structure {structure!r}: kron takes 2 factor structures, written 'kron(F1,F2)'")
    for factor in factors:
        try:
            parse_structure(factor)
        except ValueError as err:
            raise ValueError(f"structure {structure!r}: factor {factor!r}: {err}") from None
    return "kron", (factors[0], factors[1])


def parse_structure(structure: str) -> tuple[str, tuple[int | str, ...]]:
    """Split ``"NAME:N,N"`` into its name and integer arguments, with a clear error if malformed.

    ``"kron(F1,F2)"`` gives ``("kron", (F1, F2))`` with the two factor structures as strings.
    """
    if not isinstance(structure, str):
        raise TypeError(f"structure must be a string or a MatrixGroup, got {type(structure).__name__}")
    if structure.strip().startswith("product("):
        return _parse_product(structure.strip())
    if "(" in structure or ")" in structure:
        return _parse_kronecker(structure.strip())
    name, _, args = structure.strip().partition(":")
    spec = STRUCTURES.get(name)
    if spec is None:
        raise ValueError(f"unknown structure {structure!r}; valid structures: {_valid()}")
    if name in ("kron", "product"):
        raise ValueError(f"structure {structure!r}: {name} takes its blocks in parentheses, written {spec.usage!r}")
    parts = [a.strip() for a in args.split(",")] if args else []
    if len(parts) != spec.arity:
        raise ValueError(f"structure {structure!r}: {name!r} takes {spec.arity} integer argument(s), "
                         f"written {spec.usage!r}")
    try:
        values = tuple(int(a) for a in parts)
    except ValueError:
        raise ValueError(f"structure {structure!r}: arguments must be integers, written {spec.usage!r}") from None
    return name, values


def make_group(structure: str | MatrixGroup, dim: int, backend: str | Backend = "numpy", *,
               shape: tuple[int, int] | None = None, **kwargs: Any) -> MatrixGroup:
    """The group named by ``structure`` for dimension ``dim`` (or ``structure`` itself, checked).

    ``shape=(rows, cols)`` is the matrix shape of x; only ``kron(F1,F2)`` structures take it.
    """
    backend = get_backend(backend)
    if kwargs:
        raise TypeError(f"unexpected structure options {sorted(kwargs)} for {structure!r}")
    is_kronecker = isinstance(structure, Kronecker) or (
        isinstance(structure, str) and structure.strip().startswith("kron"))
    if shape is not None and not is_kronecker:
        raise ValueError(f"a matrix shape {shape!r} (from a matrix-shaped x0 or the shape option) applies "
                         f"only to kron(F1,F2) structures, not to {structure!r}: pass x0 as a 1-D vector")
    if isinstance(structure, MatrixGroup):
        if structure.dim != dim:
            raise ValueError(f"group {structure!r} has dimension {structure.dim}, but x0 has {dim}")
        if shape is not None and _check_shape(shape, dim) != structure.shape:
            raise ValueError(f"group {structure!r} has shape {structure.shape}, but x has shape {shape!r}")
        return structure
    name, args = parse_structure(structure)
    if name == "kron":
        return STRUCTURES[name].build(dim, backend, *args, shape=shape)
    return STRUCTURES[name].build(dim, backend, *args)


__all__ = ["STRUCTURES", "Factor", "MatrixGroup", "Product", "StructureSpec", "Tangent", "make_group",
           "parse_structure"]
