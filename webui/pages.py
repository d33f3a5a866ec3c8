"""The five pages. Each is a thin HTML shell; its script fetches the API and listens to SSE.

Rendering the controls in the browser from ``GET /api/v1/schema`` (rather than in Jinja)
keeps one code path for the first paint and for live updates from the panel or another
browser.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from webui.security import login_required

bp = Blueprint("pages", __name__)

PAGES = (("live", "Live"), ("chain", "Chain"), ("presets", "Presets"), ("captures", "Captures"),
         ("system", "System"))


def _page(name: str):
    return render_template(f"{name}.html", page=name, pages=PAGES)


@bp.get("/")
def index():
    return redirect(url_for("pages.live"))


@bp.get("/live")
@login_required
def live():
    return _page("live")


@bp.get("/chain")
@login_required
def chain():
    return _page("chain")


@bp.get("/presets")
@login_required
def presets():
    return _page("presets")


@bp.get("/captures")
@login_required
def captures():
    return _page("captures")


@bp.get("/system")
@login_required
def system():
    return _page("system")
