"""The built-in guest programs the KVM tests run, and how (named once: the
``expected`` fixture in tests/kvm/conftest.py runs each alone with these)."""
PROGRAMS = ("hash", "vecsum", "prng")
ROUNDS, SEED = 12, 99
