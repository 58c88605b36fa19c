"""``es-ngd bench``: an honest, seeded benchmark of es_ngd structures against pycma's CMA-ES variants.

Every solver gets the same problems (seeded rotations and optima), the same starting point and
step size, the same evaluation budget and the same target; the report counts evaluations as seen
by a counting wrapper around the objective, not as the solvers report them.

One job per module:

- :mod:`~es_ngd.bench.functions`: the built-in test functions (vectorised, minimum 0);
- :mod:`~es_ngd.bench.structured`: problems whose Hessian has a group's structure (arrow, Kronecker,
  Toeplitz, sparse Cholesky, low rank), with the structures that fit each one;
- :mod:`~es_ngd.bench.bbob`: the COCO ``bbob`` suite through ``cocoex`` (optional);
- :mod:`~es_ngd.bench.solvers`: one ask/tell adapter per solver (es_ngd structures, pycma variants);
- :mod:`~es_ngd.bench.runner`: one run with a counted objective, and many runs in parallel;
- :mod:`~es_ngd.bench.report`: success rates, ERT and ratios to CMA-ES; table, JSON and CSV;
- :mod:`~es_ngd.bench.plots`: convergence plots and the ERT-ratio summary figure (matplotlib, Agg backend);
- :mod:`~es_ngd.bench.config`: the settings of one benchmark and the runs they expand to;
- :mod:`~es_ngd.bench.cli`: the ``es-ngd bench`` command line.

cma, rich and matplotlib (the ``[bench]`` extra) are imported only inside this package, and only
where they are used, so ``import es_ngd`` never needs them.
"""
