"""webui/openapi.yaml documents every route of the API, and nothing that is not there."""

from __future__ import annotations

import re
from pathlib import Path

OPENAPI = Path(__file__).resolve().parents[2] / "webui" / "openapi.yaml"


def documented() -> dict[str, set[str]]:
    paths: dict[str, set[str]] = {}
    current = None
    for line in OPENAPI.read_text().splitlines():
        m = re.match(r"^  (/\S*):\s*$", line)
        if m:
            current = m.group(1)
            paths[current] = set()
            continue
        m = re.match(r"^    (get|post|put|patch|delete):", line)
        if m and current:
            paths[current].add(m.group(1).upper())
        elif re.match(r"^\S", line):
            current = None
    return paths


def test_every_api_route_is_documented(app):
    served: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):])
        served.setdefault(path, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    docs = documented()
    assert served == docs


def test_the_listening_modes_are_the_boxs_own():
    """The document spells out the modes (a YAML file cannot import them): the same five as dsp.schema."""
    import yaml

    from dsp.schema import MONITOR_MODES

    doc = yaml.safe_load(OPENAPI.read_text())
    body = doc["paths"]["/monitor"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert tuple(body["properties"]["mode"]["enum"]) == MONITOR_MODES
    assert tuple(doc["components"]["schemas"]["State"]["properties"]["monitor"]["enum"]) == MONITOR_MODES
