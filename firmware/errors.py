"""Errors shared across the firmware.

:class:`UserError` lives in its own module (not in ``firmware.cli``) so that it is one class
even when the CLI runs as ``python -m firmware.cli`` (which loads that file a second time as
``__main__``): commands raise it, the CLI catches it, and both must see the same class.
"""

from pathlib import Path


class UserError(Exception):
    """An error caused by what the user asked for; printed without a traceback, exit 2."""


def os_error_text(e: OSError) -> str:
    """``PATH: reason`` for a command's one-line error; a permission refused inside the data root
    also says how to get in. On the box the data root belongs to the service user (mode 0750), and
    ``/usr/local/bin/masterbox`` points every user at it: a user other than ``masterbox`` who lists
    the presets or captures should learn what to do, not only that it failed."""
    import errno

    from firmware import paths

    text = f"{e.filename or ''}: {e.strerror or e}"
    root = paths.data_root()
    if e.errno in (errno.EACCES, errno.EPERM) and e.filename and Path(str(e.filename)).is_relative_to(root):
        text += (f" (the box's data in {root} belongs to its service user: run the command as root, "
                 "`sudo masterbox ...`, which runs it as that user, or set MASTERBOX_HOME to a folder of yours)")
    return text


class Terminated(BaseException):
    """SIGTERM arrived (``timeout``, ``systemctl stop``, a CI cancel) while a command that writes files ran.

    A BaseException, like KeyboardInterrupt, so ``except Exception`` lets it through and every
    ``except BaseException``/``finally`` clean-up (a master's temporary files) runs on the way out;
    the CLI then exits 143 (128 + SIGTERM), as a process killed by it would report."""
