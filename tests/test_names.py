"""One definition of a control character (firmware.names.is_control) for every name or text a person gives.

Until 2026-11 five parts of the box had five rules (Unicode categories Cc+Cf+Cs, Cc+Cf+Cs+Zl+Zp, Cc alone,
ASCII 0-31 and 127, ASCII 0-31), so what one took another refused: an upload called "🏳️‍🌈 mix.wav" (a
zero-width joiner, Cf) became a capture the web refused to address. Each caller keeps its policy (refuse,
or replace); they all agree now on which characters. Real functions, no stand-ins.
"""

from __future__ import annotations

import argparse

import pytest

from firmware import names
from firmware.audio_settings import AudioSettingsError, toml_value
from firmware.capture_upload import UploadError, capture_name
from firmware.commands.master import _label
from firmware.passwords import PasswordError, check_new_password
from firmware.presets import PresetError, clean_name, new_name
from webui.errors import ApiError, check_name

CONTROL = ["\n", "\t", "\r", "\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u200b", "\u200d", "\u202e", "\ufeff",
           "\u00ad", "\u2028", "\u2029", "\ud800"]
ORDINARY = ["a", " ", "é", "名", "🎸", "\u00a0", "\ufe0f", "–", "“", "\u0301", "_"]


@pytest.mark.parametrize("c", CONTROL)
def test_a_control_character_is_one_for_every_part_of_the_box(c):
    assert names.is_control(c) and names.has_control(f"a{c}b")
    text = f"ab{c}cd"
    with pytest.raises(PresetError, match="control characters"):
        clean_name(text)
    with pytest.raises(ApiError, match="control characters"):
        check_name(text, "capture name")
    with pytest.raises(PasswordError, match="control characters"):
        check_new_password(f"password{c}word")
    with pytest.raises(AudioSettingsError, match="control characters"):
        toml_value(f"hw:{c}0")
    from firmware.cli import UserError
    with pytest.raises(UserError, match="control characters"):
        _label(argparse.Namespace(preset_label=text), "transparent")
    assert names.preset_label(text) == "ab cd" and names.preset_label(text, True) == "ab cd (modified)"
    if c == "\ud800":           # no file name can hold a lone surrogate: the upload is refused first
        with pytest.raises(UploadError):
            capture_name(f"{text}.wav")
    else:
        stem, kind = capture_name(f"{text}.wav")
        assert (stem, kind) == ("ab_cd", "wav")
        check_name(stem, "capture name")          # the capture an upload makes, the web can address


@pytest.mark.parametrize("c", ORDINARY)
def test_ordinary_characters_are_taken_as_they_are_everywhere(c):
    text = f"ab{c}cd"
    assert not names.is_control(c)
    assert clean_name(text) == new_name(text) == check_name(text, "x") == text
    assert check_new_password(f"password{c}word") == f"password{c}word"
    assert toml_value(f"hw:{c}0") == f'"hw:{c}0"'
    assert _label(argparse.Namespace(preset_label=text), "transparent") == text
    assert names.preset_label(text, True) == f"{text} (modified)"
    assert capture_name(f"{text}.wav") == (text, "wav")
