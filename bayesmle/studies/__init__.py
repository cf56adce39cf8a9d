"""Studies: what changes with n, with the prior scale, over replicate simulations.

Every study returns a result with a tidy ``.table`` (pandas), its summary numbers as attributes
and ``.plot()`` (a matplotlib Figure); replicate studies take ``random_seed`` and an optional
``executor`` (``concurrent.futures`` interface: a process pool or a Dask client's executor)
and give the same numbers serially and in parallel. Each model structure is compiled once per
process and refitted with new data.

Mixed models: :func:`shrinkage` (no, partial and complete pooling per group),
:func:`group_growth` (more groups vs bigger groups; Neyman-Scott), :func:`reml_bias` (ML vs
REML variance components) and :func:`joint_mode` (why the joint mode is not an estimator).
"""

from bayesmle.studies._runner import StudyResult
from bayesmle.studies.bias import BiasResult, bias
from bayesmle.studies.coverage import CoverageResult, coverage
from bayesmle.studies.fisher import FisherResult, fisher
from bayesmle.studies.group_growth import GroupGrowthResult, group_growth
from bayesmle.studies.joint_mode import JointModeResult, joint_mode
from bayesmle.studies.map_to_mle import MapToMleResult, map_to_mle
from bayesmle.studies.mixture_methods import MixtureMethodsResult, mixture_methods
from bayesmle.studies.overdispersion import OverdispersionResult, overdispersion
from bayesmle.studies.predictive_gap import PredictiveGapResult, predictive_gap
from bayesmle.studies.reml_bias import RemlBiasResult, reml_bias
from bayesmle.studies.sbc import SbcResult, sbc
from bayesmle.studies.shrinkage import ShrinkageResult, shrinkage
from bayesmle.studies.sparsity import SparsityPathResult, sparsity_path
from bayesmle.studies.surface import SurfaceResult, likelihood_surface

__all__ = [
    "MapToMleResult",
    "MixtureMethodsResult",
    "mixture_methods",
    "SparsityPathResult",
    "StudyResult",
    "map_to_mle",
    "sparsity_path",
    "BiasResult",
    "CoverageResult",
    "FisherResult",
    "OverdispersionResult",
    "PredictiveGapResult",
    "SurfaceResult",
    "bias",
    "coverage",
    "fisher",
    "likelihood_surface",
    "overdispersion",
    "predictive_gap",
    "GroupGrowthResult",
    "JointModeResult",
    "RemlBiasResult",
    "ShrinkageResult",
    "group_growth",
    "joint_mode",
    "reml_bias",
    "shrinkage",
    "SbcResult", "sbc",
]
