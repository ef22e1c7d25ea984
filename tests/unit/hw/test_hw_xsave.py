"""XSAVE as the host lays it out: the layout keeps every component at its
canonical offset, pull and push translate to and from the host's offsets
(CPUID leaf 0xD), and a component the host lacks is absent, never aliased."""
from __future__ import annotations

import errno
import random

import pytest

import pyvswitch
from pyvswitch.hw import Layout, ffi, lib

LAY = Layout.get("x86_64")
XSAVE = LAY.group("fpu_sse").offset
SPAN = LAY.group("xcrs").offset - XSAVE
# (component, size, Intel standard offset, an AMD Zen 4 with AVX-512 offset)
COMPONENTS = {2: (256, 576, 576), 3: (64, 960, None), 4: (64, 1024, None), 5: (64, 1088, 832),
              6: (512, 1152, 896), 7: (1024, 1664, 1408), 9: (8, 2688, None)}


def make_map(host: str) -> object:
    m = ffi.new("struct vsw_xsave_map *")
    m.xcr0 = 0x3
    col = 1 if host == "intel" else 2
    for i, row in COMPONENTS.items():
        if row[col] is not None:
            m.xcr0 |= 1 << i
            m.offset[i], m.csize[i] = row[col], row[0]
    m.size = 2696 if host == "intel" else 2432
    return m


def canonical(rng: random.Random, bv: int) -> bytearray:
    c = bytearray(rng.randbytes(SPAN))
    c[512:520] = bv.to_bytes(8, "little")
    c[520:528] = bytes(8)
    return c


@pytest.mark.parametrize("host", ["intel", "amd"])
def test_push_puts_each_component_where_the_host_keeps_it_and_pull_brings_it_back(host):
    rng = random.Random(host)
    m = make_map(host)
    canon = canonical(rng, m.xcr0)
    area = bytearray(4096)
    assert lib.vsw_xsave_push(m, ffi.from_buffer(canon), ffi.from_buffer(area), len(area)) == 0
    for i, (size, canon_off, _) in COMPONENTS.items():
        if m.xcr0 >> i & 1:
            assert area[m.offset[i]:m.offset[i] + size] == canon[canon_off:canon_off + size], i
    back = bytearray(SPAN)
    assert lib.vsw_xsave_pull(m, ffi.from_buffer(area), len(area), ffi.from_buffer(back)) == 0
    for i, (size, canon_off, _) in COMPONENTS.items():
        want = canon[canon_off:canon_off + size] if m.xcr0 >> i & 1 else bytes(size)   # absent: zero
        assert back[canon_off:canon_off + size] == want, i
    assert back[:512] == canon[:512]


def test_register_names_mean_the_same_bytes_on_every_host():
    """k0 on an AMD host's buffer is at 832; in the layout it is always field k0."""
    rng = random.Random(5)
    amd = make_map("amd")
    area = bytearray(rng.randbytes(4096))
    canon = bytearray(SPAN)
    assert lib.vsw_xsave_pull(amd, ffi.from_buffer(area), len(area), ffi.from_buffer(canon)) == 0
    k0 = LAY.field("k0")
    assert canon[k0.offset - XSAVE:k0.offset - XSAVE + 8] == area[832:840]
    zmm16 = LAY.field("zmm16")
    assert canon[zmm16.offset - XSAVE:zmm16.offset - XSAVE + 64] == area[1408:1472]


def test_an_image_from_a_host_with_other_offsets_restores_correctly():
    """A context pulled on an Intel-layout host (synthesised) and pushed on an AMD-layout
    one: every component both have arrives at the AMD offsets, byte for byte."""
    rng = random.Random(9)
    intel, amd = make_map("intel"), make_map("amd")
    intel_area = bytearray(rng.randbytes(4096))
    intel_area[512:520] = (0xe7).to_bytes(8, "little")     # uses only what the AMD host has too
    canon = bytearray(SPAN)
    assert lib.vsw_xsave_pull(intel, ffi.from_buffer(intel_area), 4096, ffi.from_buffer(canon)) == 0
    amd_area = bytearray(4096)
    assert lib.vsw_xsave_push(amd, ffi.from_buffer(canon), ffi.from_buffer(amd_area), 4096) == 0
    for i in (2, 5, 6, 7):
        size = COMPONENTS[i][0]
        assert amd_area[amd.offset[i]:amd.offset[i] + size] == intel_area[intel.offset[i]:intel.offset[i] + size]


def test_a_context_using_a_component_the_host_lacks_is_refused_whole():
    amd = make_map("amd")
    canon = canonical(random.Random(1), 0x2e7)                 # PKRU in use; this host has none
    area = bytearray(b"\xaa" * 4096)
    assert lib.vsw_xsave_push(amd, ffi.from_buffer(canon), ffi.from_buffer(area), 4096) == -errno.EOPNOTSUPP
    assert area == bytearray(b"\xaa" * 4096)                   # nothing written


def test_a_host_map_the_layout_cannot_hold_is_refused():
    m = make_map("amd")
    m.csize[5] = 128
    assert lib.vsw_xsave_map_check(m) == -errno.EPROTO
    m = make_map("amd")
    m.offset[7] = 4000
    assert lib.vsw_xsave_map_check(m) == -errno.ERANGE


# --- on the real vCPU -----------------------------------------------------------------
def _kvm_reason() -> str | None:
    from pyvswitch.kvm import why_unusable
    return why_unusable()


@pytest.mark.skipif(_kvm_reason() is not None, reason=f"KVM unusable here: {_kvm_reason()}")
def test_avx512_state_survives_push_and_pull_on_this_host():
    """GET after SET on the real vCPU: every zmm, k and ymm byte the layout holds comes back
    (before the translation, k0-k7 landed in the reserved group on AMD hosts)."""
    with pyvswitch.open("reference-kvm") as hv:
        vcpu = hv.pcpu(0).vcpu
        have = vcpu.info["xsave_components"]
        if not have >> 5 & 1:
            pytest.skip(f"this host has no AVX-512 state (XCR0 components {have:#x})")
        vm = hv.create_vm("vm")
        rng = random.Random(7)
        values = {f"k{i}": rng.getrandbits(64) for i in range(8)}
        values.update({f"zmm{i}": rng.getrandbits(512) for i in range(16, 32)})
        values.update({f"ymmh{i}": rng.getrandbits(128) for i in range(16)})
        values.update({f"zmmh{i}": rng.getrandbits(256) for i in range(16)})
        values.update(xcr0=have, xstate_bv=have)
        vm.regs.update(values)
        hv.switch_context(hv.host, vm)
        pcpu = hv.pcpu(0)
        vcpu.push(pcpu)
        vm.regs.update({k: 0 for k in values if k not in ("xcr0", "xstate_bv")})   # the file forgets ...
        vcpu.pull(pcpu)                                                         # ... KVM gives it back
        assert {k: vm.regs[k] for k in values} == values


@pytest.mark.skipif(_kvm_reason() is not None, reason=f"KVM unusable here: {_kvm_reason()}")
def test_push_refuses_a_context_using_a_component_this_host_lacks():
    with pyvswitch.open("reference-kvm") as hv:
        vcpu, pcpu = hv.pcpu(0).vcpu, hv.pcpu(0)
        have = vcpu.info["xsave_components"]
        lacking = [i for i in (2, 3, 5, 9) if not have >> i & 1]
        if not lacking:
            pytest.skip(f"this host has every component the layout keeps ({have:#x})")
        vm = hv.create_vm("vm")
        vm.regs["xstate_bv"] = have | 1 << lacking[0]
        hv.switch_context(hv.host, vm)
        with pytest.raises(pyvswitch.VswError) as e:
            vcpu.push(pcpu)
        assert e.value.errno == errno.EOPNOTSUPP and f"{1 << lacking[0]:#x}" in str(e.value)
