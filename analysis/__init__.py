"""The analysis of any run, simulated or measured (built on :mod:`bnwd.theory`): one module per question.

- what counts as a destabilisation: :mod:`~bnwd.analysis.destabilization` (:func:`analyze`, the definition) on the
  building blocks of :mod:`~bnwd.analysis.detection` (what each finds in one series); the regime:
  :mod:`~bnwd.analysis.regimes`;
- how a period is predicted: :mod:`~bnwd.analysis.periods` (every prediction, named by what it is fed); the next
  destabilisation forecast online: :mod:`~bnwd.analysis.forecast`;
- what happens at each destabilisation (the jump, the spike, the landing angle): :mod:`~bnwd.analysis.catapult`;
- a run's summary row: :mod:`~bnwd.analysis.summary`; the names and files of every series:
  :mod:`~bnwd.analysis.schema` and :mod:`~bnwd.analysis.records`.
"""

from bnwd import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "destabilization": ("DEFAULT_SETTINGS", "SENSITIVITY_BAND", "DetectorSettings", "Periodicity", "analyze"),
        "detection": ("find_jumps", "find_spikes", "frequency_interval", "period_lengths", "spike_statistic"),
        "regimes": ("REGIMES", "classify"),
        "periods": ("horizon_predictions", "period_a_priori", "period_from_bottom", "periods_in_hindsight"),
        "forecast": ("forecast", "run_forecast"),
        "catapult": ("catapult_constants", "catapults", "summarize_catapults"),
        "summary": ("frequency_slope", "summarize_records", "summarize_run"),
        "schema": ("SERIES", "SUMMARY_FIELDS", "validate"),
        "records": ("read_jsonl", "read_series", "series_arrays"),
    },
)
