"""Errors shared across the firmware.

:class:`UserError` lives in its own module (not in ``firmware.cli``) so that it is one class
even when the CLI runs as ``python -m firmware.cli`` (which loads that file a second time as
``__main__``): commands raise it, the CLI catches it, and both must see the same class.
"""


class UserError(Exception):
    """An error caused by what the user asked for; printed without a traceback, exit 2."""


class Terminated(BaseException):
    """SIGTERM arrived (``timeout``, ``systemctl stop``, a CI cancel) while a command that writes files ran.

    A BaseException, like KeyboardInterrupt, so ``except Exception`` lets it through and every
    ``except BaseException``/``finally`` clean-up (a master's temporary files) runs on the way out;
    the CLI then exits 143 (128 + SIGTERM), as a process killed by it would report."""
