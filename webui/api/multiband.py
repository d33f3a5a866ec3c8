"""The multiband compressor's picture for the Chain page: where the bands split, and each band's static curve.

Computed here with numpy by :func:`dsp.multiband_design.multiband_response`, from the same static
curve the chain's kernel compiles and the exact magnitudes of its Linkwitz-Riley split, so the page
draws what the box does without the control process loading numba. The live gain reduction of
each band comes with the meters (``gr_low_db`` ...), not from here.
"""

from __future__ import annotations

from flask import current_app, jsonify

from dsp import eq_design, multiband_design
from webui.api import bp
from webui.api.system import drawing_rate
from webui.backend import control, rounded


@bp.get("/multiband/response")
def get_multiband_response():
    """``{rate, on, mix, splits, freqs, levels_db, bands: {low|mid|high: {split_db, out_db, gr_db, ...}}}``."""
    values = control().state.values
    rate = drawing_rate(current_app.extensions["masterbox"])
    r = multiband_design.multiband_response(values, rate, eq_design.log_frequencies(),
                                            multiband_design.curve_levels())
    bands = {}
    for band, curve in r["bands"].items():
        p = f"mb.{band}."
        bands[band] = {"split_db": rounded(curve["split_db"]), "out_db": rounded(curve["out_db"]),
                       "gr_db": rounded(curve["gr_db"]),
                       **{k: values[p + k] for k in ("threshold_db", "ratio", "knee_db", "makeup_db", "bypass",
                                                     "solo")}}
    return jsonify({"rate": rate, "on": bool(values["mb.on"]), "mix": values["mb.mix"],
                    "splits": [values["mb.xover_low"], values["mb.xover_high"]],
                    "freqs": rounded(r["freqs"], 2), "levels_db": rounded(r["levels_db"], 2), "bands": bands})
