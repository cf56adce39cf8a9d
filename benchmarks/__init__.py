"""Side-by-side performance benchmarks of bayesmle against its peers (``python -m benchmarks``).

One module per case; each measures bayesmle and the peer in the same run (warm-up, several
repetitions, medians) and reports the ratio against the issue's target. The command line in
``__main__`` runs each case in a fresh child process and writes ``benchmarks/RESULTS.md``.
"""

#: Case modules in run order: (number, module name).
CASES = (
    (1, "mle_logistic"),
    (2, "mle_linear"),
    (3, "map_penalized"),
    (4, "study_map_to_mle"),
    (5, "nuts"),
    (6, "dask_fisher"),
    (7, "memory"),
    (9, "mixed_lmm"),
    (10, "dask_glm"),
    (11, "cold_path"),
    (12, "glm_glum"),
)
#: Cases run only when asked for by name or number (``--cases backends``).
OPTIONAL = ((8, "backends"),)
