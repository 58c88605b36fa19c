"""es_ngd: structured natural-gradient evolution strategies.

Quick start::

    import es_ngd
    result = es_ngd.optimize(lambda x: float((x ** 2).sum()), x0=[1.0] * 10, sigma0=0.5, seed=1)

or drive the ask/tell loop yourself with :class:`es_ngd.NGDES`. Only numpy is needed here: torch,
ray, gymnasium and cma are imported when a feature that needs them is used.
"""

from es_ngd.backend import Backend, get_backend
from es_ngd.bounds import Bounds
from es_ngd.checkpoint import CheckpointError
from es_ngd.evaluators import SerialEvaluator, VectorizedEvaluator, make_evaluator
from es_ngd.groups import STRUCTURES, MatrixGroup, make_group
from es_ngd.logger import Logger
from es_ngd.optimize import optimize
from es_ngd.population import Population
from es_ngd.reevaluation import Reevaluated
from es_ngd.restarts import RunRecord
from es_ngd.strategy import NGDES, Options, Result, State, natural_gradient_step

__version__ = "0.3.0"

__all__ = [
    "NGDES",
    "STRUCTURES",
    "Backend",
    "Bounds",
    "CheckpointError",
    "Logger",
    "MatrixGroup",
    "Options",
    "Population",
    "Reevaluated",
    "Result",
    "RunRecord",
    "SerialEvaluator",
    "State",
    "VectorizedEvaluator",
    "__version__",
    "get_backend",
    "make_evaluator",
    "make_group",
    "natural_gradient_step",
    "optimize",
]
