"""Data drift: per-column tests of a current table against a reference table or profile.

Modules call downward only, in this order (each imports only those above it):

    columns, samples   reading tables into columns; sorted samples, sketches, binning
    distances          KS and Wasserstein on samples and sketches
    stattests          PSI, Jensen-Shannon, chi-square and z on counts or shares
    profiles           `ReferenceProfile`: what the monitor keeps of the training data
    methods            the drift-method plug-ins (`DriftTest`), their registry, the default
    result             `ColumnDrift`, `DriftReport`
    report             `drift_report`: one method per column, then the dataset verdict
    files              `compare_files` and the readers behind `tradeloop drift`
    conformance        `check_drift_method`, the suite every method passes
"""

from tradeloop.monitoring.drift.files import compare_files, load_reference, load_table
from tradeloop.monitoring.drift.methods import (
    METHODS,
    DriftTest,
    default_method,
    drift_method,
    register_drift_method,
)
from tradeloop.monitoring.drift.profiles import ReferenceProfile
from tradeloop.monitoring.drift.report import drift_report
from tradeloop.monitoring.drift.result import ColumnDrift, DriftReport

__all__ = [
    "METHODS",
    "ColumnDrift",
    "DriftReport",
    "DriftTest",
    "ReferenceProfile",
    "compare_files",
    "default_method",
    "drift_method",
    "drift_report",
    "load_reference",
    "load_table",
    "register_drift_method",
]
