"""Format-independent precision logic: calibration statistics, smoothing, accuracy-aware selection."""

from slimport.precision.selection import Candidate, SelectionResult, rank_linear_layers, select_recipe
from slimport.precision.smoothing import smoothed_copy
from slimport.precision.stats import LinearInputStats, collect_linear_input_stats

__all__ = ["Candidate", "SelectionResult", "LinearInputStats", "collect_linear_input_stats", "rank_linear_layers",
           "select_recipe", "smoothed_copy"]
