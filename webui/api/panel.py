"""The virtual front panel: the same knobs and buttons as the real one, driven like a hand would.

``control.panel`` is the running ``hw.panel`` panel; a web turn is ``panel.turn(name,
detents)`` and a web press ``panel.press_for(role, seconds)``, the panel's logical entry points.
On a physical panel they enter where the decoded GPIO edges do (an encoder steps exactly as
under a hand; a potentiometer's parameter moves 1 % per detent and the shaft, which a browser
cannot turn, re-arms pick-up; a press is judged short or long by the button's own rule), so the
panel controller maps and acts on them as on a hand's, and the LEDs and needles of the real
panel follow. On simulated hardware (the demo, tests) it is a ``SimulatedPanel``, which drives
real edges on mock pins instead. The panel's state reaches the page through the ``panel`` SSE
event and ``GET /api/v1/panel``.
"""

from __future__ import annotations

from flask import jsonify

from webui.api import bp
from webui.backend import call, control, jsonable
from webui.errors import ApiError, field, json_body

MAX_DETENTS = 48  # one request: a fast spin of a physical encoder is about this many
MAX_HOLD_S = 8.0  # long enough for the longest hold (BYPASS 5 s: shutdown)


def panel():
    p = getattr(control(), "panel", None)
    if p is None:
        raise ApiError(404, "this box runs without a front panel, so there is no virtual panel")
    return p


def snapshot() -> dict | None:
    p = getattr(control(), "panel", None)
    return jsonable(p.snapshot()) if p is not None else None


@bp.get("/panel")
def get_panel():
    return jsonify(snapshot() or {"knobs": {}, "buttons": {}})


@bp.post("/panel/knobs/<name>/turn")
def turn(name):
    p = panel()
    if name not in p.knobs:
        raise ApiError(404, f"no knob named {name!r} (the panel has: {', '.join(p.knobs) or 'none'})")
    detents = field(json_body(), "detents", int)
    if detents == 0 or abs(detents) > MAX_DETENTS:
        raise ApiError(400, f"'detents' must be a non-zero integer between -{MAX_DETENTS} and {MAX_DETENTS}")
    call(p.turn, name, detents)
    return jsonify(snapshot())


@bp.post("/panel/buttons/<name>/press")
def press(name):
    """A short press, or ``{"hold_s": s}`` held that long (the button's hold time or more: a long
    press). The answer is the panel with ``press``: what the press was (short, long, or null)."""
    p = panel()
    if name not in p.buttons:
        raise ApiError(404, f"no button named {name!r} (the panel has: {', '.join(p.buttons) or 'none'})")
    hold = field(json_body(), "hold_s", (int, float), required=False, default=0)
    if not (0 <= hold <= MAX_HOLD_S):
        raise ApiError(400, f"'hold_s' must be between 0 and {MAX_HOLD_S:g} seconds (got {hold})")
    kind = call(p.press_for, name, float(hold) if hold else None)
    return jsonify({**(snapshot() or {}), "press": kind})
