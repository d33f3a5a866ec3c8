"""A capture's sidecar file ``NAME.json``: where it is, and how a capture's recording facts wait in it for the analysis.

The analysis itself (:func:`firmware.captures.write_sidecar`) needs the meter; this module needs nothing but
the standard library, because the capture writer imports it at start-up: an import in the engine process
while it runs holds the interpreter lock against the audio loop (the first capture's stop cost three xruns
when the writer imported :mod:`firmware.captures` there, 2026-11-25).
"""

from __future__ import annotations

import json
from pathlib import Path

from firmware.atomic import write_atomic

SIDECAR_FORMAT = "masterbox-capture-analysis"
# how a capture was recorded (by the writer, or uploaded): kept from the pending sidecar into the analysis
WRITER_KEYS = ("preset", "modified", "tap", "started", "stop_reason", "writer_error", "dropped_frames", "gaps",
               "gap_frames", "sample_format", "source", "uploaded_from", "uploaded", "converted_from")
PENDING_KEY = "analysis_pending"


def sidecar_path(wav) -> Path:
    return Path(wav).with_suffix(".json")


def read_sidecar(wav) -> dict | None:
    """A capture's analysis sidecar; None when there is none yet (or only a pending one), or it is unreadable."""
    try:
        doc = json.loads(sidecar_path(wav).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and not doc.get(PENDING_KEY) else None


def write_pending_sidecar(wav, facts: dict) -> Path | None:
    """Keep how a capture was recorded (its :data:`WRITER_KEYS`) until it is analysed.

    The analysis may come later and from another process: the control process analyses captures
    left without one (a capture finalised after a crash or a power cut, an engine killed before its
    analysis was written) and knows nothing of the recording; :func:`firmware.captures.write_sidecar`
    carries these facts into it. Written only where there is no sidecar yet (a finished analysis is
    never replaced); the list shows such a capture as "pending".
    """
    side = sidecar_path(wav)
    if side.exists():
        return None
    doc = {"format": SIDECAR_FORMAT, "file": Path(wav).name, PENDING_KEY: True,
           **{k: v for k, v in facts.items() if k in WRITER_KEYS}}
    write_atomic(side, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return side
