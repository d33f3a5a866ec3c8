"""The [panel] config: defaults, overrides, and start-up refusals that name the config line."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.config import ConfigError, load_config, panel_spec
from hw.panel.spec import DEFAULT_PANEL


def spec_from(tmp_path, text: str):
    path = tmp_path / "masterbox.toml"
    path.write_text(text, encoding="utf-8")
    return panel_spec(load_config(path))


def refusal(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as e:
        spec_from(tmp_path, text)
    return str(e.value)


def test_missing_file_gives_the_default_map(tmp_path):
    spec = panel_spec(load_config(tmp_path / "none.toml"))
    assert spec == DEFAULT_PANEL
    assert [k.name for k in spec.knobs] == ["input", "tone", "glue", "width", "output"]
    assert {b.role: b.hold for b in spec.buttons} == {
        "bypass": 5.0, "preset_down": 1.0, "preset_up": 2.0, "learn": 1.0, "capture": 1.0}


def test_template_parses_to_the_default_map(tmp_path):
    from pathlib import Path

    template = Path(__file__).resolve().parents[2] / "firmware" / "config-template.toml"
    assert template.is_file()
    cfg = load_config(template)
    assert cfg["system"]["shutdown_command"] == "systemctl poweroff"
    spec = panel_spec(cfg)
    assert spec.knob("tone").line is not None
    strip = [k.__class__(**{**k.__dict__, "line": None}) for k in spec.knobs]
    assert strip == list(DEFAULT_PANEL.knobs)
    assert [(b.role, b.pin, b.hold) for b in spec.buttons] == [(b.role, b.pin, b.hold) for b in DEFAULT_PANEL.buttons]
    assert [(m.name, m.pins, m.pin, m.source) for m in spec.meters] == \
        [(m.name, m.pins, m.pin, m.source) for m in DEFAULT_PANEL.meters]
    assert (spec.status_pin, spec.clip_pin) == (DEFAULT_PANEL.status_pin, DEFAULT_PANEL.clip_pin)


def test_overrides_replace_one_device(tmp_path):
    spec = spec_from(tmp_path, """
[panel.knobs.input]
param = "in.trim_db"
encoder = ["GPIO20", 21, 19]
detents = 48

[panel.buttons.preset_up]
hold = 3.0

[panel.meters.gr_needle]
disabled = true
""")
    k = spec.knob("input")
    assert (k.kind, k.pins, k.detents, k.line) == ("encoder", (20, 21, 19), 48, 2)
    assert spec.button("preset_up").hold == 3.0 and spec.button("preset_up").pin == 6
    assert "gr_needle" not in [m.name for m in spec.meters]


def test_unknown_parameter_names_the_line(tmp_path):
    msg = refusal(tmp_path, """# my panel
[panel.knobs.width]
pot = 3
param = "st.widht"
""")
    assert "line 4" in msg and "unknown parameter 'st.widht'" in msg and "st.width" in msg


def test_unknown_macro_and_also_set(tmp_path):
    assert "line 3" in refusal(tmp_path, '[panel.knobs.glue]\npot = 2\nmacro = "glew"\n')
    msg = refusal(tmp_path, '[panel.knobs.tone]\npot = 1\nparam = "eq4.gain_db"\nalso_set = { "eq4.tpye" = "tilt" }\n')
    assert "line 4" in msg and "eq4.tpye" in msg


def test_two_devices_sharing_a_pin_names_both_lines(tmp_path):
    msg = refusal(tmp_path, """
[panel.knobs.input]
param = "in.trim_db"
encoder = [20, 21]

[panel.knobs.output]
param = "out.drive_db"
encoder = [19, 21]
""")
    assert "line 8" in msg and "GPIO21 is used twice" in msg and "line 4" in msg


def test_clash_with_a_default_device_names_the_written_line(tmp_path):
    msg = refusal(tmp_path, '[panel.buttons.learn]\npin = 22\n')     # 22 is the default status LED
    assert "line 2" in msg and "GPIO22" in msg and "status led" in msg


def test_clash_with_the_adc_bus(tmp_path):
    msg = refusal(tmp_path, '[panel.buttons.capture]\npin = 9\n')      # MCP3008 MISO
    assert "line 2" in msg and "MCP3008" in msg


def test_pot_channel_used_twice(tmp_path):
    msg = refusal(tmp_path, '[panel.knobs.width]\nparam = "st.width"\npot = 0\n')
    assert "line 3" in msg and "channel 0" in msg


def test_bad_values(tmp_path):
    assert "line 2" in refusal(tmp_path, "[panel]\nrefresh_hz = 10\n")
    assert "line 3" in refusal(tmp_path, "[panel.buttons.bypass]\npin = 4\nhold = -1\n")
    assert "line 2" in refusal(tmp_path, "[panel.buttons.bypass]\npin = 40\n")
    assert "unknown button" in refusal(tmp_path, "[panel.buttons.reboot]\npin = 4\n")
    assert "line 2" in refusal(tmp_path, "[panel]\nknobz = 1\n")
    msg = refusal(tmp_path, '[panel.meters.loudness]\nkind = "bar"\nsource = "loudness"\npins = [23, 24]\n'
                            'thresholds = [0, -1]\n')
    assert "line 5" in msg and "ascending" in msg
    assert "unknown source" in refusal(tmp_path, '[panel.meters.vu]\nkind = "needle"\nsource = "lufs"\npin = 12\n')


def test_centre_detent_defaults_to_knobs_whose_centre_is_neutral(tmp_path):
    spec = spec_from(tmp_path, """
[panel.knobs.tone]
param = "eq4.gain_db"
pot = 1

[panel.knobs.output]
param = "out.drive_db"
pot = 4

[panel.knobs.glue]
param = "eq.tone_freq"
pot = 2

[panel.knobs.width]
param = "st.width"
pot = 3
centre_detent = 0.05
""")
    # a gain around 0 dB: a detent; drive (-12..+24 dB) and a frequency have no neutral centre
    assert spec.knob("tone").centre_detent == 0.025
    assert spec.knob("output").centre_detent == 0.0 and spec.knob("glue").centre_detent == 0.0
    assert spec.knob("width").centre_detent == 0.05
    assert "line 4" in refusal(tmp_path, '[panel.knobs.tone]\nparam = "eq.tone_db"\npot = 1\ncentre_detent = 0.3\n')


def test_header_comments_do_not_hide_lines(tmp_path):
    msg = refusal(tmp_path, '[panel.knobs.glue]   # one knob\npot = 2\nmacro = "glew"\n')
    assert "line 3" in msg


def test_inline_tables_name_their_line(tmp_path):
    msg = refusal(tmp_path, '[panel.knobs]\ninput = { param = "in.trimm", pot = 0 }\n')
    assert "line 2" in msg


# -- the sections other than [panel] ------------------------------------------------------
@pytest.mark.parametrize("text,needle", [
    ('[audio]\nrate = 44000\n', "line 2: [audio] rate: must be one of 44100, 48000"),
    ('[audio]\nperiods = "two"\n', "[audio] periods: must be a whole number"),
    ('[web]\nport = -5\n', "[web] port: -5 is out of range 0..65535"),
    ('[web]\nprot = 8081\n', "[web] prot: unknown key"),
    ('[web]\nsecure_cookies = 1\n', "[web] secure_cookies: must be true or false"),
    ('[storage]\n\n# floor\nfree_space_floor_mb = "lots"\n', "line 4: [storage] free_space_floor_mb"),
    ('audio = 3\n', "audio must be a [audio] table"),
])
def test_wrong_values_outside_the_panel_section_are_refused_naming_the_line(tmp_path, text, needle):
    path = tmp_path / "masterbox.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert needle in str(e.value) and str(path) in str(e.value)


def test_the_shipped_template_and_an_empty_file_are_valid(tmp_path):
    from firmware.config import DEFAULTS

    cfg = load_config(Path(__file__).resolve().parents[2] / "firmware" / "config-template.toml")
    assert cfg["audio"]["rate"] in (44100, 48000, 88200, 96000)
    (tmp_path / "empty.toml").write_text("")
    assert load_config(tmp_path / "empty.toml")["web"] == DEFAULTS["web"]
