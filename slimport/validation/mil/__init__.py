"""A Linux evaluator for Core ML ML Programs: load with coremltools, run op by op with NumPy."""

from slimport.validation.mil.interpreter import MilInterpreter
from slimport.validation.mil.program import load, program_info

__all__ = ["MilInterpreter", "load", "program_info"]
