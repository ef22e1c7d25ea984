"""pyvswitch.drivers - one driver module per device kind of the platform.

Each module is registered under the ``pyvswitch.drivers`` entry points and
loaded by modalias: ``vsw_pcpu``, ``vsw_mem``, ``vsw_membus`` (the prior art's
parts), ``vsw_sbus``, ``vsw_store``, ``vsw_mover`` (the invention's).
"""
