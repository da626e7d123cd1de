"""Targets and device profiles: data files in this folder plus their loader."""

from slimport.targets.loader import list_profiles, list_targets, load_profile, load_target
from slimport.targets.schema import GATE_KEYS, Gate, Precision, Profile, Target

__all__ = [
    "GATE_KEYS", "Gate", "Precision", "Profile", "Target",
    "list_profiles", "list_targets", "load_profile", "load_target",
]
