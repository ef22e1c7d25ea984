"""vsw_kvm_probe: the one way every caller learns what the host's KVM offers,
through /dev/kvm alone (no VM, no vCPU), with the step that failed and why."""
import errno
import os
import threading

import pytest

import pyvswitch.hw.kvm as hwkvm
from pyvswitch.host import host_report
from pyvswitch.hw import ffi, lib
from pyvswitch.hw.kvm import REQUIRED_CAPS, KvmVcpu, kvm_info, why_unusable

REASON = why_unusable()
needs_kvm = pytest.mark.skipif(REASON is not None, reason=f"KVM unusable here: {REASON}")


def probe(path):
    out = ffi.new("struct vsw_kvm_probe *")
    r = lib.vsw_kvm_probe(ffi.NULL if path is None else path.encode(), out)
    return r, out


@needs_kvm
def test_probe_agrees_with_a_vcpu_it_did_not_open():
    info = kvm_info()
    assert info.usable and info.api_version == 12
    assert all(info.capabilities[c] for c in REQUIRED_CAPS)
    vcpu = KvmVcpu("/dev/kvm", 2 << 20)
    try:
        # the facts the vCPU's open read of the host are the probe's, to the bit
        assert info.absent_msrs == vcpu.absent_msrs
        assert info.xsave_size == vcpu.info["xsave_size"]
        assert info.xsave_components == vcpu.info["xsave_components"]
        assert info.host_msrs == vcpu.info["host_msrs"]
    finally:
        vcpu.close()


@needs_kvm
def test_probe_struct_is_whole_on_success():
    r, pr = probe(None)                       # NULL path: /dev/kvm
    assert r == 0 and pr.error == 0 and pr.failed == lib.VSW_KVM_PROBE_OK
    assert pr.missing == 0 and pr.caps & lib.VSW_KVM_CAPS_REQUIRED == lib.VSW_KVM_CAPS_REQUIRED
    assert pr.layout_msrs == len(hwkvm.layout_msrs())
    assert 0 < pr.host_msrs and pr.msr_present >> pr.layout_msrs == 0     # no bit past the layout's records
    assert pr.xsave.xcr0 & 3 == 3 and pr.xsave_size >= 4096


def test_missing_device_fails_at_open_and_says_so(tmp_path):
    r, pr = probe(str(tmp_path / "kvm"))
    if pr.failed == lib.VSW_KVM_PROBE_BUILD:
        pytest.skip("this build has no KVM backend")
    assert r == -errno.ENOENT == pr.error and pr.failed == lib.VSW_KVM_PROBE_OPEN and pr.api_version == -1
    info = kvm_info(str(tmp_path / "kvm"))
    assert not info.present and not info.usable and "does not exist" in info.reason
    assert info.capabilities == {} and info.absent_msrs == []


def test_a_file_that_is_not_kvm_is_refused_at_the_api_step(tmp_path):
    # the hostile neighbour: something that opens but answers no KVM ioctl
    fake = tmp_path / "kvm"
    fake.write_bytes(b"")
    r, pr = probe(str(fake))
    if pr.failed == lib.VSW_KVM_PROBE_BUILD:
        pytest.skip("this build has no KVM backend")
    assert r == -errno.EPROTONOSUPPORT and pr.failed == lib.VSW_KVM_PROBE_API and pr.caps == 0
    info = kvm_info(str(fake))
    assert info.present and not info.usable and "API version" in info.reason


def test_a_directory_cannot_be_opened(tmp_path):
    r, pr = probe(str(tmp_path))
    if pr.failed == lib.VSW_KVM_PROBE_BUILD:
        pytest.skip("this build has no KVM backend")
    assert r == -errno.EISDIR and pr.failed == lib.VSW_KVM_PROBE_OPEN
    assert "cannot open" in kvm_info(str(tmp_path)).reason


def test_probe_without_an_out_struct_is_einval():
    assert lib.vsw_kvm_probe(b"/dev/kvm", ffi.NULL) == -errno.EINVAL


@needs_kvm
def test_host_report_opens_no_vcpu(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("host_report opened a vCPU")
    monkeypatch.setattr(hwkvm.KvmVcpu, "__init__", refuse)
    rep = host_report()
    assert rep.kvm_backend == "usable" and rep.kvm.usable
    assert rep.kvm_absent_msrs == rep.kvm.absent_msrs


@needs_kvm
def test_probes_race_with_a_running_vcpu():
    # probing while another thread opens, runs and closes vCPUs: every answer the same
    first = kvm_info()
    seen, errors = [], []

    def prober():
        try:
            for _ in range(20):
                seen.append(kvm_info())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def churn():
        try:
            for _ in range(3):
                v = KvmVcpu("/dev/kvm", 2 << 20)
                v.calibrate(50_000, 2)
                v.close()
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=prober) for _ in range(3)] + [threading.Thread(target=churn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(seen) == 60 and all(i == first for i in seen)


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/kvm"), reason="needs root to drop access")
def test_no_permission_is_named(tmp_path):
    # a copy of /dev/kvm's node this process may not open: as a user outside the kvm group
    import subprocess
    import sys
    code = ("import os; from pyvswitch.hw.kvm import kvm_info;"       # imported first: the venv is root's
            "os.setgroups([]); os.setgid(65534); os.setuid(65534);"
            "i = kvm_info(); print(i.accessible, i.reason)")
    st = os.stat("/dev/kvm")
    if st.st_mode & 0o006:
        pytest.skip("/dev/kvm is open to everyone here")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("False") and "join the kvm group" in r.stdout
