"""Only what needs code: the C core built by cffi (pyvswitch._vsw) and, beside
it, the switch's CPython extension (pyvswitch._fastpath, csrc/fastpath.c),
which shares csrc/vsw.h but does not link the core: it is handed the
addresses of the few calls it makes.  Metadata lives in pyproject.toml."""
import os

from setuptools import Extension, setup

_SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g"]
_FLAGS = ["-std=c11", "-Wall", "-Wextra", *(_SAN if os.environ.get("VSW_SANITIZE") else ["-O2"])]

setup(
    cffi_modules=["csrc/build_vsw.py:ffibuilder"],
    ext_modules=[Extension("pyvswitch._fastpath", ["csrc/fastpath.c"], include_dirs=["csrc"],
                           depends=["csrc/vsw.h"], extra_compile_args=_FLAGS,
                           extra_link_args=_SAN if os.environ.get("VSW_SANITIZE") else [])],
)
