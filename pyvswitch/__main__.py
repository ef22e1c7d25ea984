"""python -m pyvswitch: the same as the pyvswitch command."""
import sys

from .cli import main

sys.exit(main())
