"""The masterbox appliance: engine and control processes, state, presets, captures, CLI."""

__version__ = "0.1.0"
