"""Module parameters as the kernel parses them (lib/kstrtox.c, kernel/params.c,
kernel/module/main.c), tests named after the function they follow; and the
schema's bounds on every way a parameter arrives (TOML, modprobe, sysfs)."""
import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_fakes import driver, make_module

import pyvswitch
from pyvswitch.kernel import PROBE_FORCE_SYNCHRONOUS, Device, Kernel, KernelError, ModuleParam
from pyvswitch.kernel.params import kstrtobool, kstrtoint, kstrtoll, kstrtouint, kstrtoull
from pyvswitch.schema import KINDS


def kernel(*modules):
    return Kernel(modules=modules, use_entry_points=False)


def with_params(*params, drivers=()):
    mod = make_module("m", *drivers)
    mod.MODULE_PARAMS = params
    return kernel(mod)


# --- lib/kstrtox.c -------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [("y", True), ("Y", True), ("1", True), ("yes", True), ("1junk", True),
                                        ("n", False), ("N", False), ("0", False), ("no", False),
                                        ("on", True), ("ON", True), ("off", False), ("Of", False)])
def test_kstrtobool_takes_the_first_one_or_two_characters(text, value):
    assert kstrtobool(text) is value


@pytest.mark.parametrize("text", ["", "o", "ox", "maybe", "true", " y", "2"])
def test_kstrtobool_refuses_the_rest_with_einval(text):
    with pytest.raises(KernelError) as e:
        kstrtobool(text)
    assert e.value.errno == errno.EINVAL


@pytest.mark.parametrize("text,value", [("10", 10), ("010", 8), ("0x10", 16), ("0X1f", 31), ("0", 0),
                                        ("+7", 7), ("-7", -7), ("10\n", 10), ("-0", 0), ("2147483647", 2**31 - 1),
                                        ("-2147483648", -2**31)])
def test_kstrtoint_base_0(text, value):
    assert kstrtoint(text) == value


@pytest.mark.parametrize("text,code", [("1_0", errno.EINVAL), (" 1", errno.EINVAL), ("1 ", errno.EINVAL),
                                       ("09", errno.EINVAL), ("0x", errno.EINVAL), ("", errno.EINVAL),
                                       ("10\n\n", errno.EINVAL), ("--1", errno.EINVAL), ("0o7", errno.EINVAL),
                                       ("2147483648", errno.ERANGE), ("-2147483649", errno.ERANGE),
                                       ("0x80000000", errno.ERANGE), ("1e3", errno.EINVAL)])
def test_kstrtoint_refuses_what_c_does_not_parse_and_what_does_not_fit(text, code):
    with pytest.raises(KernelError) as e:
        kstrtoint(text)
    assert e.value.errno == code


@pytest.mark.parametrize("text,code", [("-1", errno.EINVAL), ("4294967296", errno.ERANGE),
                                       ("18446744073709551616", errno.ERANGE)])
def test_kstrtouint_has_no_sign_and_32_bits(text, code):
    with pytest.raises(KernelError) as e:
        kstrtouint(text)
    assert e.value.errno == code
    assert kstrtouint("4294967295") == 2**32 - 1 and kstrtoull("18446744073709551615") == 2**64 - 1


@given(st.integers(-2**63, 2**63 - 1), st.sampled_from(["d", "x", "o"]))
def test_kstrtoll_reads_back_what_c_prints(value, fmt):
    """printf's %lld, %#llx and %#llo (a sign first) read back by kstrtoll with base 0."""
    sign, mag = ("-" if value < 0 else ""), abs(value)
    text = sign + {"d": f"{mag}", "x": f"0x{mag:x}", "o": f"0{mag:o}"}[fmt]
    assert kstrtoll(text) == value


@given(st.integers(2**31, 2**64 - 1))
def test_kstrtoint_is_erange_for_every_value_past_int(value):
    with pytest.raises(KernelError) as e:
        kstrtoint(str(value))
    assert e.value.errno == errno.ERANGE


# --- kernel/params.c through modprobe and sysfs ------------------------------------------
def test_param_set_bool_takes_kstrtobool_and_a_bare_name():
    k = with_params(ModuleParam("flag", bool, False, 0o644))
    k.modprobe("m flag")                                # no value: "1"
    assert k.sysfs.read("module/m/parameters/flag") == "Y"
    for text, shown in (("off", "N"), ("yes", "Y"), ("n", "N"), ("on\n", "Y")):
        k.sysfs.write("module/m/parameters/flag", text)
        assert k.sysfs.read("module/m/parameters/flag") == shown
    with pytest.raises(KernelError) as e:
        k.sysfs.write("module/m/parameters/flag", "perhaps")
    assert e.value.errno == errno.EINVAL and k.sysfs.read("module/m/parameters/flag") == "Y"


def test_param_set_int_octal_hex_and_range_through_modprobe():
    k = with_params(ModuleParam("level", int, 0, 0o644))
    k.modprobe("m level=010")
    assert k.module("m").values["level"] == 8
    k.rmmod("m")
    for text, code in (("1_0", errno.EINVAL), ("2147483648", errno.ERANGE)):
        with pytest.raises(KernelError) as e:
            k.modprobe(f"m level={text}")
        assert e.value.errno == code and not k.module("m").loaded and str(text) in str(e.value)


def test_parse_one_wants_a_value_for_all_but_bool():
    k = with_params(ModuleParam("level", int, 0, 0o644))
    with pytest.raises(KernelError) as e:
        k.modprobe("m level")
    assert e.value.errno == errno.EINVAL and not k.module("m").loaded


def test_param_set_charp_keeps_the_text_up_to_1024_characters():
    k = with_params(ModuleParam("label", str, "x", 0o644))
    k.modprobe("m", label="a" * 1024)
    assert k.sysfs.read("module/m/parameters/label") == "a" * 1024
    with pytest.raises(KernelError) as e:
        k.sysfs.write("module/m/parameters/label", "b" * 1025)
    assert e.value.errno == errno.ENOSPC and k.module("m").values["label"] == "a" * 1024
    k.sysfs.write("module/m/parameters/label", "")             # sysfs_kf_write: no bytes, no store
    assert k.module("m").values["label"] == "a" * 1024
    k.rmmod("m")
    k.modprobe("m label=")
    assert k.module("m").values["label"] == ""


def test_param_array_takes_comma_separated_values_up_to_its_size():
    k = with_params(ModuleParam("irqs", "uint", (), 0o644, array=3))
    k.modprobe("m irqs=1,0x10,010")
    assert k.module("m").values["irqs"] == (1, 16, 8)
    assert k.sysfs.read("module/m/parameters/irqs") == "1,16,8"
    for text in ("1,2,3,4", "\n", ",", "1,,2", "1,-2", "1,x"):
        with pytest.raises(KernelError) as e:
            k.sysfs.write("module/m/parameters/irqs", text)
        assert e.value.errno == errno.EINVAL, text
        assert k.sysfs.read("module/m/parameters/irqs") == "1,16,8"       # nothing changed
    k.modprobe("m")
    k.sysfs.write("module/m/parameters/irqs", "7")
    assert k.module("m").values["irqs"] == (7,)


def test_param_array_of_bools_shows_y_and_n():
    k = with_params(ModuleParam("on", bool, (), 0o644, array=4))
    k.modprobe("m", on=[True, False, "on"])
    assert k.sysfs.read("module/m/parameters/on") == "Y,N,Y"


def test_parameq_takes_dash_for_underscore():
    k = with_params(ModuleParam("max_burst", int, 0, 0o644))
    k.modprobe("m max-burst=64")
    assert k.module("m").values["max_burst"] == 64


@pytest.mark.parametrize("perm,read,write", [(0o644, True, True), (0o444, True, False), (0o600, True, True),
                                             (0o200, False, True), (0o400, True, False)])
def test_module_param_sysfs_setup_modes(perm, read, write):
    k = with_params(ModuleParam("p", int, 5, perm))
    k.modprobe("m")
    path = "module/m/parameters/p"
    assert k.sysfs.tree()[path] == ("r" if read else "") + ("w" if write else "")
    if not read:
        with pytest.raises(KernelError) as e:
            k.sysfs.read(path)
        assert e.value.errno == errno.EACCES
    if not write:
        with pytest.raises(KernelError) as e:
            k.sysfs.write(path, "6")
        assert e.value.errno == errno.EACCES and k.module("m").values["p"] == 5


def test_module_param_sysfs_setup_makes_no_file_for_perm_0():
    k = with_params(ModuleParam("hidden", int, 5, 0))
    k.modprobe("m hidden=9")
    assert k.module("m").values["hidden"] == 9
    with pytest.raises(KernelError) as e:
        k.sysfs.read("module/m/parameters/hidden")
    assert e.value.errno == errno.ENOENT


@pytest.mark.parametrize("perm", [0o666, 0o646, 0o1000, -1, 0o044, 0o004, 0o420, 0o640 | 0o002])
def test_verify_octal_permissions_refuses_modes_module_param_would_not_build(perm):
    with pytest.raises(KernelError) as e:
        ModuleParam("p", int, 0, perm)
    assert e.value.errno == errno.EINVAL


def test_unknown_module_param_cb_takes_async_probe_and_warns_for_the_rest():
    log = []
    k = kernel(make_module("m", driver("foo", ("vsw,x",), log=log)))
    k.modprobe("m async_probe bogus=1")
    assert k.driver("foo").allows_async_probing
    assert "unknown parameter 'bogus' ignored" in " ".join(line.message for line in k.dmesg)
    assert "async_probe" not in " ".join(line.message for line in k.dmesg)
    k.device_add(Device("x0", compatible=["vsw,x"]))
    assert k.wait_for_device_probe(timeout=10) and k.device("x0").driver is not None
    k.rmmod("m")
    for text, expect in (("async_probe=0", False), ("async_probe=junk", True), ("", False)):
        k.modprobe(f"m {text}")
        assert k.driver("foo").allows_async_probing is expect, text
        k.rmmod("m")


def test_driver_allows_async_probing_keeps_force_synchronous():
    drv = driver("foo", ("vsw,x",))
    drv.probe_type = PROBE_FORCE_SYNCHRONOUS
    k = kernel(make_module("m", drv))
    k.modprobe("m async_probe=1")
    assert not k.driver("foo").allows_async_probing


# --- the schema's bounds on every way in ---------------------------------------------------
@pytest.mark.parametrize("text,bound", [("channels=1000000", "at most 64"), ("channels=0", "positive"),
                                        ("reaches_dram=5", "at most 1"), ("max_burst=12", "multiple of 8"),
                                        ("max_burst=0", "positive")])
def test_modprobe_vsw_mover_refuses_what_the_schema_bounds_with_einval(text, bound):
    k = Kernel()
    n = len(k.uevents)
    with pytest.raises(KernelError) as e:
        k.modprobe(f"vsw_mover {text}")
    assert e.value.errno == errno.EINVAL and bound in str(e.value)
    assert not k.module("vsw_mover").loaded and len(k.uevents) == n
    name, _, value = text.partition("=")
    with pytest.raises(KernelError) as e:
        k.modprobe("vsw_mover", **{name: int(value)})           # typed from Python: the same bounds
    assert e.value.errno == errno.EINVAL


def test_vsw_mover_parameter_past_its_type_is_erange():
    k = Kernel()
    with pytest.raises(KernelError) as e:
        k.modprobe("vsw_mover max_burst=4294967296")
    assert e.value.errno == errno.ERANGE


def test_sysfs_write_of_a_vsw_mover_parameter_is_held_to_the_schema_and_changes_nothing():
    k = Kernel()
    k.modprobe("vsw_mover channels=4")
    for text in ("65", "0", "-1", "1000000"):
        with pytest.raises(KernelError) as e:
            k.sysfs.write("module/vsw_mover/parameters/channels", text)
        assert e.value.errno in (errno.EINVAL, errno.ERANGE)
        assert k.sysfs.read("module/vsw_mover/parameters/channels") == "4"
    k.sysfs.write("module/vsw_mover/parameters/channels", "64")
    with pytest.raises(KernelError) as e:
        k.sysfs.write("module/vsw_mover/parameters/reaches_dram", "5")
    assert e.value.errno == errno.EINVAL and "at most 1" in str(e.value)
    assert k.sysfs.read("module/vsw_mover/parameters/reaches_dram") == "0"


@pytest.mark.parametrize("name", ["channels", "reaches_dram", "max_burst", "write_threshold", "read_threshold"])
def test_every_vsw_mover_parameter_takes_exactly_its_schema_range(name):
    p = KINDS["mover"].param(name)
    k = Kernel()
    k.modprobe("vsw_mover")
    path = f"module/vsw_mover/parameters/{name}"
    top = int(p.maximum) // p.multiple_of * p.multiple_of
    bottom = -(-int(p.minimum) // p.multiple_of) * p.multiple_of
    for ok in (bottom, top):
        k.sysfs.write(path, str(ok))
        assert k.sysfs.read(path) == str(ok)
    for bad in (bottom - 1, top + 1):
        with pytest.raises(KernelError):
            k.sysfs.write(path, str(bad))
        assert k.sysfs.read(path) == str(top)


def test_the_toml_path_refuses_the_same_bounds():
    from importlib import resources
    base = (resources.files("pyvswitch.platforms") / "reference.toml").read_text()
    bad = base.replace('compatible = ["vsw,mover"]', 'compatible = ["vsw,mover"]\nparams = { channels = 1000000 }', 1)
    assert bad != base
    with pytest.raises(pyvswitch.VswError) as e:
        pyvswitch.Platform.load(bad)
    assert e.value.errno == errno.EINVAL and "channels" in str(e.value) and "at most 64" in str(e.value)


def test_a_bound_mover_takes_a_new_channels_value_at_its_next_probe_only_within_bounds():
    with pyvswitch.open() as hv:
        k = hv.kernel
        k.sysfs.write("module/vsw_mover/parameters/channels", "3")
        mover = k.device("mover0")
        with pytest.raises(KernelError):
            k.sysfs.write("module/vsw_mover/parameters/channels", "65")
        assert k.module("vsw_mover").values["channels"] == 3
        assert mover.driver is not None


@given(st.text(max_size=30))
def test_kstrtoint_on_any_text_is_a_value_in_range_or_einval_erange(text):
    try:
        v = kstrtoint(text)
    except KernelError as e:
        assert e.errno in (errno.EINVAL, errno.ERANGE)
    else:
        assert -2**31 <= v < 2**31
        assert text.strip("+-0123456789abcdefABCDEFxX\n") == ""        # only what C reads as a number


@given(st.text(max_size=20))
def test_kstrtobool_on_any_text_is_a_bool_or_einval(text):
    try:
        b = kstrtobool(text)
    except KernelError as e:
        assert e.errno == errno.EINVAL
    else:
        assert b is (text[0] in "yY1" or text[:2].lower() == "on")


@pytest.mark.parametrize("ctype,text,value", [("int", "5\0junk", 5), ("charp", "ab\0cd", "ab"), ("bool", "n\0y", False),
                                              ("uint", "0x10\n\0", 16)])
def test_param_attr_store_reads_the_value_as_a_c_string(ctype, text, value):
    """A value written to a parameter's file ends at its first NUL, as the
    kernel's param_set_<type> reads it (kstrto*, strnlen) - the trailing NULs
    some writers pad with included."""
    k = with_params(ModuleParam("p", ctype, None if ctype == "charp" else 0, 0o644),
                    ModuleParam("a", ctype, (), 0o644, array=2))
    k.modprobe("m")
    k.sysfs.write("module/m/parameters/p", text)
    k.sysfs.write("module/m/parameters/a", text)
    assert k.module("m").values["p"] == value and k.module("m").values["a"] == (value,)


def test_unknown_module_param_cb_compares_async_probe_with_strcmp():
    """parameq folds "-" into "_" for the module's own parameters only; the
    async_probe option is compared with strcmp: "async-probe" is unknown."""
    k = kernel(make_module("m", driver("foo", ("vsw,x",))))
    k.modprobe("m async-probe=1")
    assert not k.driver("foo").allows_async_probing
    assert "unknown parameter 'async-probe' ignored" in " ".join(line.message for line in k.dmesg)


@pytest.mark.parametrize("line,value", [('m label="a b"', "a b"), ("m label=a=b", "a=b"),
                                        ('m "label=x y"', "x y"), ("m   label=z  ", "z"),
                                        ('m label="q', "q")])
def test_next_arg_splits_the_options_as_parse_args_does(line, value):
    """kernel/params.c next_arg: blanks separate parameters except inside
    double quotes; the value starts after the first "="; quotes around the
    value (or the whole parameter) are not part of it."""
    k = with_params(ModuleParam("label", str, None, 0o644))
    k.modprobe(line)
    assert k.module("m").values["label"] == value
    assert not any("unknown parameter" in line.message for line in k.dmesg)


def test_param_set_charp_counts_bytes_as_strnlen_does():
    """param_set_charp's 1024 is bytes (strnlen): 512 two-byte characters fit,
    513 are ENOSPC - the text as the kernel would be given it, in UTF-8."""
    k = with_params(ModuleParam("label", str, "x", 0o644))
    k.modprobe("m")
    k.sysfs.write("module/m/parameters/label", "é" * 512)
    assert k.module("m").values["label"] == "é" * 512
    with pytest.raises(KernelError) as e:
        k.sysfs.write("module/m/parameters/label", "é" * 513)
    assert e.value.errno == errno.ENOSPC and k.module("m").values["label"] == "é" * 512
