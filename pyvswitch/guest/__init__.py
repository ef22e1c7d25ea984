"""Guest programs for the KVM backend: build a freestanding C program against
the guest runtime (``build``), and read the ELF image it makes (``GuestImage``).

The runtime (``runtime/``: ``vsw_guest.h``, ``crt0.S``, ``runtime.c``,
``vsw_guest.ld``) ships inside the package and is compiled with the user's own
gcc, together with the program: no binaries are shipped.
"""
from .build import RUNTIME, build, runtime_dir
from .image import GuestImage, Segment

__all__ = ["RUNTIME", "GuestImage", "Segment", "build", "runtime_dir"]
