"""pyvswitch - a reference emulator of hardware-assisted VM context switching.

Models patent CN105718300B: a context store on a private storage bus and a
burst mover that save and load a PCPU's register state in a few large
transfers, against the prior art of the PCPU storing registers to DRAM.
"""
from .hw import VswError

__version__ = "0.1.0"
__all__ = ["VswError", "__version__"]
