"""Build the optional compiled fast paths of the ledger (everything else is in pyproject.toml).

``optional=True``: where one cannot be built (no C compiler; for ``_merkle``, no OpenSSL
headers) the install still succeeds and the ledger uses its pure-Python code for it (same
output, slower): ``ledger._jcs`` canonicalises events (RFC 8785), ``ledger._merkle`` hashes
leaves and tiles with OpenSSL's SHA-256.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("ledger._jcs", ["ledger/_jcs.c"], optional=True),
    Extension("ledger._merkle", ["ledger/_merkle.c"], libraries=["crypto"], optional=True),
])
