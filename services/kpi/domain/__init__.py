"""KPI status engine: pure domain code (no I/O, the date is always passed in).

Modules: model (types), trajectory (the plan), forecast (trend), state (incremental
aggregates), rules (the status rules, documented in one place), episodes (status_changed and
episode ids), rollup (measures, ministries, self-assessment), history (`as_of` queries).
"""
