"""Only what needs code: the cffi extension.  Metadata lives in pyproject.toml."""
from setuptools import setup

setup(cffi_modules=["csrc/build_vsw.py:ffibuilder"])
