"""Real training of scale-invariant torch networks with online metrics (built on :mod:`bnwd.simulate`).

- the nets and data sets, one record each (:mod:`~bnwd.empirical.catalog`: torch-free), built by
  :mod:`~bnwd.empirical.nets` and :mod:`~bnwd.empirical.data`; which weights are scale-invariant, found numerically
  (:mod:`~bnwd.empirical.scale_invariance`);
- where η̃ is measured: the per-step :class:`~bnwd.empirical.monitor.Monitor`, in any training loop; it coordinates
  the record stream (:mod:`~bnwd.empirical.record_stream`) and the sharpness schedule
  (:mod:`~bnwd.empirical.sharpness_schedule`, :mod:`~bnwd.empirical.tracking`);
- curvature: Hessian-vector products and the effective sharpness (:mod:`~bnwd.empirical.curvature`) on the
  eigensolvers of :mod:`~bnwd.empirical.eigensolvers`;
- training: a run as a spec (:mod:`~bnwd.empirical.config`, :mod:`~bnwd.empirical.runs`), the trainer as a thin loop
  over the monitor (:mod:`~bnwd.empirical.trainer`), runs trained together (:mod:`~bnwd.empirical.batched`),
  checkpoints, and grids on Dask (:mod:`~bnwd.empirical.sweep`).
"""

from bnwd import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "catalog": ("DATASET_RECORDS", "MODEL_RECORDS"),
        "nets": ("build_model",),
        "data": ("load_dataset",),
        "scale_invariance": ("find_si_groups", "si_parameters"),
        "monitor": ("Monitor",),
        "curvature": ("HessianOperator", "effective_sharpness"),
        "eigensolvers": ("top_eigenvalues",),
        "config": ("RunSpec", "TrainConfig"),
        "runs": ("build_trainer", "read_run", "train_run"),
        "trainer": ("Trainer",),
        "sweep": ("run_sweep",),
    },
)
