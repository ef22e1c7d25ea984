"""Where the tests' shared files are, named once (test modules live at different depths)."""
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent                                  # the repository
SCRIPTS = ROOT / "scripts"
EXPLICIT = TESTS / "platforms" / "explicit.toml"     # a platform with every parameter written out
GUESTS = TESTS / "kvm" / "guests"                    # C programs run as guests
FUZZ = TESTS / "fuzz"                                # the atheris harnesses
