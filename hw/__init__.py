"""The hardware edge: audio backends (hw.audio) and the front panel (hw.panel)."""
