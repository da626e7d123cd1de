"""Format-independent precision logic: sensitivity ranking and accuracy-aware float fallback."""

from slimport.precision.selection import Candidate, SelectionResult, rank_linear_layers, select_float_layers

__all__ = ["Candidate", "SelectionResult", "rank_linear_layers", "select_float_layers"]
