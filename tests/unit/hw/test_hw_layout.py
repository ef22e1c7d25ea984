"""Register-context layouts: sizes, KVM compatibility, register views."""
import errno
import os
import platform

import pytest

import pyvswitch.hw as hw

KVM_STRUCTS = {"regs": 144, "sregs": 312, "xcrs": 392, "debugregs": 128, "events": 64, "msrs": 48 * 16,
               "lapic": 1024}
XSAVE_COMPONENTS = {  # standard-format offsets from the XSAVE area's start, and sizes
    "fpu_sse": (0, 512), "xsave_header": (512, 64), "avx": (576, 256), "mpx": (960, 128),
    "opmask": (1088, 64), "zmm_hi256": (1152, 512), "hi16_zmm": (1664, 1024), "pkru": (2688, 8),
}


@pytest.mark.parametrize("name", ["x86_64", "aarch64"])
def test_groups_tile_the_register_file_in_64_byte_spans(name):
    lay = hw.Layout.get(name)
    offset = 0
    for g in lay.groups:
        assert g.offset == offset and g.size % 64 == 0 and 0 <= g.used <= g.size
        offset += g.size
    assert offset == lay.size


@pytest.mark.parametrize("name", ["x86_64", "aarch64"])
def test_fields_lie_inside_their_group_and_never_overlap(name):
    lay = hw.Layout.get(name)
    taken = set()
    for f in lay.fields.values():
        g = lay.groups[f.group]
        assert g.offset <= f.offset and f.offset + f.size <= g.offset + g.used, f
        span = set(range(f.offset, f.offset + f.size))
        assert not span & taken, f
        taken |= span


def test_x86_groups_have_kvm_struct_sizes_and_xsave_offsets():
    lay = hw.Layout.get("x86_64")
    for name, size in KVM_STRUCTS.items():
        assert lay.group(name).used == size
    base = lay.group("fpu_sse").offset
    for name, (off, size) in XSAVE_COMPONENTS.items():
        g = lay.group(name)
        assert (g.offset - base, g.used) == (off, size)
    f = lay.fields
    assert (f["rip"].offset, f["rflags"].offset) == (128, 136)
    assert f["cr0"].offset - lay.group("sregs").offset == 224
    assert f["xmm0"].offset - base == 160 and f["zmm16"].size == 64 and f["zmmh0"].size == 32


def test_aarch64_matches_user_pt_regs_and_fpsimd():
    lay = hw.Layout.get("aarch64")
    assert lay.group("core").used == 272 and lay.group("fpsimd").used == 528
    assert lay.fields["pc"].offset == 256 and lay.fields["v31"].size == 16
    assert {"sctlr_el1", "spsr_el1", "mdscr_el1", "tpidr_el0", "tpidrro_el0"} <= set(lay.fields)


@pytest.mark.skipif(platform.machine() != "x86_64" or not os.path.exists("/usr/include/linux/kvm.h"),
                    reason="needs an x86_64 build host with the kernel's uapi headers (linux/kvm.h)")
def test_offsets_were_checked_against_uapi_headers_at_build_time():
    assert hw.Layout.get("x86_64").uapi_checked


def test_reset_state_holds_msr_indices():
    lay = hw.Layout.get("x86_64")
    state = lay.reset_state()
    msrs = lay.group("msrs").offset
    assert int.from_bytes(state[msrs:msrs + 4], "little") == 0x174          # SYSENTER_CS
    assert int.from_bytes(state[msrs + 16 * 4:msrs + 16 * 4 + 4], "little") == 0xC0000081  # STAR


def test_unknown_layout_and_register_are_clear_errors():
    with pytest.raises(hw.UnknownName) as e:
        hw.Layout.get("sparc")
    assert e.value.errno == errno.ENOENT and "x86_64" in str(e.value)
    with pytest.raises(hw.VswError) as e:
        hw.Layout.get("x86_64").field("rzz")
    assert e.value.errno == errno.ENOENT and "rzz" in str(e.value)


def test_register_view_widths_and_ranges(x86):
    x86.pcpu.switch(x86.mover, 0, x86.slot(1))
    regs = x86.pcpu.regs
    regs["rax"] = 2**64 - 1
    regs["cs.selector"] = 0x10
    regs["mxcsr"] = 0x1F80
    regs["xmm3"] = 2**128 - 2
    regs["zmm31"] = bytes(range(64))
    assert regs["rax"] == 2**64 - 1 and regs.rax == 2**64 - 1
    assert regs["cs.selector"] == 0x10 and regs["mxcsr"] == 0x1F80
    assert regs["xmm3"] == 2**128 - 2 and regs.get_bytes("zmm31") == bytes(range(64))
    for name, bad, code in [("cs.selector", 1 << 16, errno.ERANGE), ("rax", -1, errno.ERANGE),
                            ("xmm0", b"\0" * 15, errno.EINVAL), ("rax", 1.5, errno.EINVAL)]:
        with pytest.raises(hw.VswError) as e:
            regs[name] = bad
        assert e.value.errno == code
    with pytest.raises(KeyError):
        regs["nope"]
    assert "nope" not in regs and "rip" in regs and len(regs) == len(x86.layout.fields)


def test_update_checks_every_value_before_writing_any(x86):
    x86.pcpu.switch(x86.mover, 0, x86.slot(1))
    regs = x86.pcpu.regs
    with pytest.raises(hw.VswError):
        regs.update({"rax": 5, "rbx": 1 << 70})
    assert regs["rax"] == 0
