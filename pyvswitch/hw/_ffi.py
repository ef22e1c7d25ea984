"""The compiled core: ``ffi`` and ``lib`` of pyvswitch._vsw."""
try:
    from pyvswitch._vsw import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "pyvswitch's C core (pyvswitch._vsw) is not built: install the package with "
        "'pip install .' (or 'pip install -e .' for development)"
    ) from exc

__all__ = ["ffi", "lib"]
