"""Unmodified static Linux x86-64 programs as guests: the ELF loader with its
Linux stack and auxv (``LinuxImage``, ``build_stack``) and the system-call
server, one per guest (``LinuxProcess``).  The KVM side - how a guest's
``syscall`` reaches the server on the host at hand - is ``pyvswitch.kvm.linux``."""
from .image import LinuxImage, build_stack, host_hwcap
from .server import NR, LinuxProcess

__all__ = ["NR", "LinuxImage", "LinuxProcess", "build_stack", "host_hwcap"]
