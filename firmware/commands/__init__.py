"""One module per ``masterbox`` sub-command.

Each module defines ``register(subparsers)`` that adds its parser and sets ``func`` to a
``run(args) -> int`` callable. Modules import only the standard library at top level so that
``masterbox --help`` and every command start fast; heavy imports (numpy, numba, flask) happen
inside ``run``.
"""

# The order here is the order `masterbox --help` lists them in.
COMMANDS = (
    "analyze",
    "master",
    "album",
    "engine",
    "run",
    "demo",
    "bench",
    "presets",
    "captures",
    "passwd",
)
