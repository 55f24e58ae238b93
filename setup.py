"""Build the optional compiled fast path of ledger.canonical (everything else is in pyproject.toml).

``optional=True``: where no C compiler is at hand the install still succeeds, and
``ledger.canonical`` uses its pure-Python path (same output, about 10 times slower).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ledger._jcs", ["ledger/_jcs.c"], optional=True)])
