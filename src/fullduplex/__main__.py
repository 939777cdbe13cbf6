"""``python -m fullduplex``: the ``fullduplex`` command line."""

from .cli import main

raise SystemExit(main())
