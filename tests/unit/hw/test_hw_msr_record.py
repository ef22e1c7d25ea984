"""The MSR record size is stated once (struct vsw_msr_record, which the build
proves equal to KVM's kvm_msr_entry where <linux/kvm.h> is installed); the
layout's MSR fields, its reset state and the name lookup all follow from it."""
import pytest

import pyvswitch.hw as hw
from pyvswitch.hw import ffi
from pyvswitch.hw.kvm import MSR_RECORD, layout_msrs, msr_name


def test_the_record_is_kvms_msr_entry():
    assert MSR_RECORD == ffi.sizeof("struct vsw_msr_record") == 16      # KVM's ABI: u32 index, u32, u64 data
    assert ffi.offsetof("struct vsw_msr_record", "index") == 0
    assert ffi.offsetof("struct vsw_msr_record", "data") == 8


def test_msr_fields_step_by_one_record():
    lay = hw.Layout.get("x86_64")
    g = lay.group("msrs")
    names = layout_msrs()
    data = ffi.offsetof("struct vsw_msr_record", "data")
    for i, n in enumerate(names):
        f = lay.field(f"msr.{n}")
        assert f.offset == g.offset + MSR_RECORD * i + data and f.size == 8
    assert g.used == MSR_RECORD * len(names)            # the group holds exactly the records


def test_msr_name_finds_every_index_and_nothing_else():
    lay = hw.Layout.get("x86_64")
    reset = lay.reset_state()
    base = lay.group("msrs").offset
    names = layout_msrs()
    for i, n in enumerate(names):
        index = int.from_bytes(reset[base + MSR_RECORD * i:base + MSR_RECORD * i + 4], "little")
        assert index and msr_name(index) == n
    # the hostile neighbours: an index no record holds, one read at a half-record step, zero
    assert msr_name(0xDEADBEEF) is None and msr_name(0) is None
    half = int.from_bytes(reset[base + MSR_RECORD // 2:base + MSR_RECORD // 2 + 4], "little")
    assert msr_name(half) is None if half else True


@pytest.mark.parametrize("bad", ["struct vsw_msr_recordx", "struct kvm_msr_entry"])
def test_kvm_names_are_not_in_the_abi(bad):
    # the Python side names the record only through the ABI's struct
    with pytest.raises(ffi.error):
        ffi.sizeof(bad)
