"""The product group ``product(F1@N1,…)`` (es_ngd/groups/product.py): what is particular to it. The Fisher
information, closure, sampling, backend and search-distribution checks every group passes are in
tests/test_groups_structured.py, parametrised with product structures."""

from __future__ import annotations

import numpy as np
import pytest
from fim_check import assert_exact_natural_gradient, random_element
from problems import quadratic

import es_ngd
from es_ngd.groups import make_group
from es_ngd.groups.product import Product


def test_structure_string_round_trips_and_names_its_blocks() -> None:
    group = make_group("product( kron(hier:1,1,diag)@2x3 , diag@2,hier:1,1@4)", 12)
    assert isinstance(group, Product)
    assert [block.structure for block in group.blocks] == ["kron(hier:1,1,diag)", "diag", "hier:1,1"]
    assert [block.dim for block in group.blocks] == [6, 2, 4]
    assert group.blocks[0].shape == (2, 3)
    assert group.structure == "product(kron(hier:1,1,diag)@2x3,diag@2,hier:1,1@4)"
    assert make_group(group.structure, 12).structure == group.structure
    # the sub-algebra is the blocks' together (the kron block has one scale exchange less)
    assert group.num_parameters() == sum(block.num_parameters() for block in group.blocks)


@pytest.mark.parametrize(("structure", "message"), [
    ("product(diag@3)", "add up to 3, but x has p = 12"),
    ("product(diag)", "needs a size"),
    ("product(diag@x)", "integer N or ROWSxCOLS"),
    ("product(diag@0,diag@12)", "must be positive"),
    ("product(diag@6,,diag@6)", "an empty block"),
    ("product(diag@6,product(diag@6))", "cannot itself be a product"),
    ("product(bogus@12)", "block 'bogus@12': unknown structure"),
    ("product(kron(tril,tril)@6,diag@6)", "needs the matrix shape"),
    ("product(kron(tril,tril)@2x2,diag@6)", "add up to 10"),
    ("product:3", "in parentheses"),
    ("product(diag@12", "written 'product"),
])
def test_malformed_product_structures_are_clear_errors(structure: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        es_ngd.NGDES(np.zeros(12), 1.0, structure=structure)


def test_fisher_check_catches_a_block_with_the_wrong_weight() -> None:
    """Negative control: a product that weights one block's direction by its share of p is caught."""
    group = make_group("product(dense@2,diag@3)", 5)

    class Reweighted(Product):
        def natural_direction(self, z, u, shift=0.0):
            tangent = super().natural_direction(z, u, shift)
            return {k: v * (2 / 5 if k.startswith("0.") else 1.0) for k, v in tangent.items()}

    assert_exact_natural_gradient(group, seed=2)
    with pytest.raises(AssertionError):
        assert_exact_natural_gradient(Reweighted(group.blocks), seed=2)


def test_hessian_direction_and_solve_are_the_blocks_own() -> None:
    """``C⊙κ(B⁻¹HB⁻ᵀ − I)`` from products with vectors that are zero outside each block, and ``B⁻¹y``."""
    rng = np.random.default_rng(4)
    group = make_group("product(up:1@3,diag@2,dense@2)", 7)
    factor = random_element(group, rng)
    a = rng.standard_normal((7, 7))
    hess = a @ a.T + np.eye(7)
    b_inv = np.linalg.inv(group.dense(factor))
    eigenvalues, vectors = np.linalg.eigh(b_inv @ hess @ b_inv.T)
    expected = group.tangent_dense(group.natural_direction(vectors.T.copy(), eigenvalues, 1.0))
    got = group.tangent_dense(group.hessian_direction(factor, lambda v: v @ hess, lambda: np.diag(hess).copy()))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    y = rng.standard_normal((3, 7))
    np.testing.assert_allclose(group.solve(factor, y), y @ b_inv.T, rtol=1e-9, atol=1e-12)


def test_a_product_of_one_block_is_that_group_step_for_step() -> None:
    def f(x: np.ndarray) -> float:
        return float(np.sum(np.arange(1, 7) * (x - 0.3) ** 2) + 0.5 * x[0] * x[1])

    a = es_ngd.NGDES(np.ones(6), 0.7, structure="product(up:2@6)", seed=3)
    b = es_ngd.NGDES(np.ones(6), 0.7, structure="up:2", seed=3)
    for _ in range(30):
        xa, xb = a.ask(), b.ask()
        np.testing.assert_array_equal(xa, xb)
        values = [f(x) for x in xa]
        a.tell(xa, values)
        b.tell(xb, values)
    np.testing.assert_allclose(a.covariance(), b.covariance(), rtol=1e-12)


def test_checkpoint_round_trip(tmp_path) -> None:
    es = es_ngd.NGDES(np.ones(7), 0.5, structure="product(kron(dense,tril)@2x2,up:1@3)", seed=1)
    for _ in range(5):
        x = es.ask()
        es.tell(x, [float(v @ v) for v in x])
    es.save(tmp_path / "run.npz")
    back = es_ngd.NGDES.load(tmp_path / "run.npz")
    assert back.group.structure == es.group.structure
    np.testing.assert_array_equal(back.ask(), es.ask())


def test_block_structure_beats_diag_on_a_block_diagonal_problem() -> None:
    """Two rotated ill-conditioned 3×3 blocks: dense blocks learn them, diag cannot (seed 1, measured: the
    product 1,818 evaluations, dense 1,827, diag 17,631)."""
    rng = np.random.default_rng(0)
    hess = np.zeros((6, 6))
    for start in (0, 3):
        q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        hess[start:start + 3, start:start + 3] = q @ np.diag([1.0, 30.0, 1e3]) @ q.T
    runs = {structure: es_ngd.optimize(quadratic(hess), np.ones(6), 1.0, structure=structure, seed=1,
                                       ftarget=1e-8, maxfevals=20_000)
            for structure in ("product(dense@3,dense@3)", "diag")}
    block, diag = runs["product(dense@3,dense@3)"], runs["diag"]
    assert block.fbest < 1e-8
    assert diag.fbest > 1e-8 or diag.evaluations > 1.3 * block.evaluations, (block.evaluations, diag.evaluations)
