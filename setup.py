"""Declares the optional C extension; every other setting lives in pyproject.toml.

``fullduplex.protocol._speedups`` is the compiled receive path: masking, and the parsing of
whole messages in plain frames (``fullduplex/protocol/_compiled.py`` picks it or pure Python).

``FULLDUPLEX_BUILD_SPEEDUPS`` says what the build does with it:

- ``auto`` (the default): build it when a C compiler and Python's headers are there; otherwise
  warn and install the pure-Python package, which works the same, only slower.
- ``require``: a failed compile is an error (``make test`` builds this way, so that the
  compiled pass never tests pure Python unnoticed).
- ``skip``: do not build it.

Whether an installed extension is *used* is decided at run time: ``FULLDUPLEX_NO_SPEEDUPS=1``
makes fullduplex run its pure-Python code.
"""

import os

from setuptools import Extension, setup

BUILD_CHOICES = ("auto", "require", "skip")

build = os.environ.get("FULLDUPLEX_BUILD_SPEEDUPS", "auto")
if build not in BUILD_CHOICES:
    raise SystemExit(f"FULLDUPLEX_BUILD_SPEEDUPS={build!r}: expected one of {BUILD_CHOICES}")

ext_modules = []
if build != "skip":
    ext_modules.append(
        Extension(
            "fullduplex.protocol._speedups",
            ["src/fullduplex/protocol/_speedups.c"],
            # setuptools reports a failed optional build as a warning and goes on.
            optional=build == "auto",
        )
    )

setup(ext_modules=ext_modules)
