"""Declares the optional C extension; every other setting lives in pyproject.toml.

``fullduplex._speedups`` is the compiled receive path: masking, and the parsing of whole
messages in plain frames (see ``fullduplex/protocol/_mask.py``). It is optional: without a C
compiler or Python's headers the build warns and goes on, and fullduplex uses its pure-Python
code.
``FULLDUPLEX_NO_SPEEDUPS=1`` skips the extension on purpose.
"""

import os

from setuptools import Extension, setup

ext_modules = []
if os.environ.get("FULLDUPLEX_NO_SPEEDUPS") != "1":
    ext_modules.append(
        Extension("fullduplex._speedups", ["src/fullduplex/_speedups.c"], optional=True)
    )

setup(ext_modules=ext_modules)
