"""The ``swarmlog`` commands, one module per group; each has ``register(app)``.

Importing these modules imports typer (they are imported only by
:func:`swarmlog.cli.app.build_app`).
"""
