"""Platform descriptions: the built-ins load, bad files say what is wrong and where."""
import errno

import pytest

import pyvswitch
from pyvswitch import Platform, VswError

import locations
from locations import EXPLICIT  # every parameter written out

GOOD = Platform.load(None)


def test_builtins_load():
    assert set(Platform.builtin_names()) >= {"reference", "no-mover", "aarch64", "datacenter"}
    for name in Platform.builtin_names():
        p = Platform.load(name)
        assert p.of_kind("pcpu") and p.of_kind("mem") and p.of_kind("memory-bus")
    assert Platform.load("aarch64").layout.name == "aarch64"
    assert not Platform.load("no-mover").of_kind("mover")


def test_datacenter_holds_thousands_of_vms():
    with pyvswitch.open("datacenter") as hv:
        store = hv.kernel.device("store0").driver_data
        assert store.capacity_slots > 10000
        assert len(hv.platform.of_kind("pcpu")) == 4


def test_file_and_text_forms(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text(EXPLICIT.read_text())
    assert Platform.load(str(f)).name == "explicit"
    assert Platform.load(f).name == "explicit"
    assert Platform.load(EXPLICIT.read_text()).source == "<TOML text>"


def test_the_reference_platform_is_the_schema_defaults_and_explicit_spells_them_out():
    """One source of truth: the built-in reference platform writes no parameter
    down, and the test file that spells every one out says the same."""
    from pyvswitch.schema import KINDS
    explicit = Platform.load(EXPLICIT)
    for spec in GOOD.devices:
        assert spec.params == KINDS[spec.kind].defaults()
        assert explicit.spec(spec.name).params == spec.params


def edit(old, new):
    return open(str(EXPLICIT)).read().replace(old, new)


BAD = {
    "syntax": ("name = \"pcpu0\"", "name = pcpu0", "not valid TOML"),
    "unknown param": ("max_burst = 8192", "max_bursts = 8192", "key 'max_bursts'"),
    "wrong type": ("max_burst = 8192", "max_burst = \"big\"",
                   "expected a positive integer, a multiple of 8 (at most 0xffffffff), got 'big'"),
    "ragged burst": ("max_burst = 8192", "max_burst = 100", "multiple of 8"),
    "bad layout": ("layout = \"x86_64\"", "layout = \"sparc\"", "expected one of x86_64, aarch64"),
    "load out of range": ("utilisation = 0.0", "utilisation = 1.5", "fraction in [0, 1)"),
    "unknown supplier": ("suppliers = [\"store0\", \"sbus0\"]", "suppliers = [\"store9\"]", "no device named 'store9'"),
    "store without ids": ("vendor = 0x5653\n", "", "numeric 'vendor' and 'device'"),
    "duplicate name": ("name = \"mem0\"", "name = \"pcpu0\"", "used twice"),
    "unknown key": ("bus = \"sbus0\"", "bsu = \"sbus0\"", "key 'bsu'"),
    "no memory bus": ("compatible = [\"vsw,memory-bus\"]", "compatible = [\"acme,thing\"]", "vsw,memory-bus"),
    "bad id": ("vendor = 0x5653", "vendor = -1", "32-bit id"),
}


@pytest.mark.parametrize("case", BAD)
def test_malformed_files_name_the_file_the_key_and_what_was_expected(tmp_path, case):
    old, new, says = BAD[case]
    text = edit(old, new)
    assert text != edit("", "")
    f = tmp_path / "broken.toml"
    f.write_text(text)
    with pytest.raises(VswError) as e:
        Platform.load(str(f))
    assert e.value.errno == errno.EINVAL
    assert str(f) in str(e.value) and says in str(e.value), str(e.value)


def test_missing_platform_is_enoent():
    with pytest.raises(VswError) as e:
        Platform.load("no-such-platform")
    assert e.value.errno == errno.ENOENT and "reference" in str(e.value)


def test_a_platform_file_can_never_import_code(tmp_path):
    # a compatible string naming a Python module is just a string: nothing matches, nothing is imported
    text = edit('compatible = ["vsw,mover"]', 'compatible = ["os.system"]')
    with pyvswitch.open(text) as hv:
        rep = hv.report()
        mover = next(d for d in rep.devices if d.name == "mover0")
        assert mover.modules == [] and mover.state == "no matching module" and not rep.fast_path


LEGACY = locations.TESTS / "platforms" / "legacy.toml"   # reference + a device without compatible


def _legacy_module():
    from kernel_fakes import driver, make_module
    mod = make_module("vsw_legacy_rtc", driver("legacy-rtc"))
    mod.MODULE_ALIAS = ("platform:legacy-rtc",)        # as a Linux name-matched driver declares it
    return mod


def test_a_legacy_platform_device_is_matched_by_name_through_its_platform_alias():
    from pyvswitch.kernel import Kernel
    plat = Platform.load(LEGACY)
    spec = plat.spec("legacy-rtc")
    assert spec.compatible == () and spec.kind is None and not plat.find("legacy-rtc").invention
    k = Kernel(modules=[_legacy_module()])
    pyvswitch.platform.boot(plat, k)
    add = next(e for e in k.uevents if e.action == "add" and e.devpath == "/devices/platform/legacy-rtc")
    assert add.env["MODALIAS"] == "platform:legacy-rtc" and not any(key.startswith("OF_") for key in add.env)
    report = pyvswitch.Controller(k, plat).enable()
    d = next(d for d in report.devices if d.name == "legacy-rtc")
    assert (d.identifier, d.modalias, d.modules, d.state, d.driver) == (
        "platform:legacy-rtc", "platform:legacy-rtc", ["vsw_legacy_rtc"], "bound", "legacy-rtc")
    assert report.fast_path and report.exit_status == 0


def test_a_legacy_platform_device_without_a_module_leaves_the_rest_working():
    with pyvswitch.open(LEGACY) as hv:
        assert hv.path == "store"
        d = next(d for d in hv.controller.report().devices if d.name == "legacy-rtc")
        assert d.state == "no matching module" and d.modalias == "platform:legacy-rtc" and not d.invention
