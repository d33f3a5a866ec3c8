"""The EQ's response curve for the Chain page, from the box's current parameters.

Computed here with numpy by :func:`dsp.eq_design.eq_response`, the same design function the
chain's kernel compiles, so the curve is what the box does without the control process loading
numba or a second copy of the filter maths living in JavaScript.
"""

from __future__ import annotations

from flask import current_app, jsonify

from dsp import eq_design
from webui.api import bp
from webui.api.system import drawing_rate
from webui.backend import control, rounded


@bp.get("/eq/response")
def get_eq_response():
    """``{rate, freqs, mid_db, side_db, same}``: the EQ stage's gain in dB on the mid and the side channel."""
    values = control().state.values
    rate = drawing_rate(current_app.extensions["masterbox"])
    curve = eq_design.eq_response(values, rate, eq_design.log_frequencies())
    mid, side = rounded(curve["mid_db"]), rounded(curve["side_db"])
    return jsonify({"rate": rate, "freqs": rounded(curve["freqs"], 2),
                    "mid_db": mid, "side_db": side, "same": mid == side})
