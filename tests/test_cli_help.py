"""``masterbox COMMAND --help`` for every command: it works, and reads as plain text (a command's
description is its module's docstring, whose reST markup is dropped: no ````literal```` quotes, no
``:mod:`x``` roles)."""

from __future__ import annotations

import re

import pytest

from firmware.cli import main
from firmware.commands import COMMANDS


def test_every_command_is_listed(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    for command in COMMANDS:
        assert re.search(rf"^    {command} ", listed, re.M), command


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: masterbox {command}")
    assert "``" not in text and not re.search(r":\w+:`", text), text
