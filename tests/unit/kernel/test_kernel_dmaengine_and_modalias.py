"""The mover as a dmaengine provider; modalias matching against the host's real strings."""
import errno
import glob
import os
import re

import pytest

import pyvswitch
from pyvswitch.drivers.mover import CAP_CONTEXT
from pyvswitch.kernel import Kernel, ProbeDefer, VswError, alias_matches, pci_alias
from pyvswitch.kernel.dmaengine import COMPLETE, ERROR, IN_PROGRESS


def test_request_defers_while_there_is_no_provider():
    k = Kernel(use_entry_points=False)
    with pytest.raises(ProbeDefer) as e:
        k.dma.request_channel(CAP_CONTEXT, "client")
    assert e.value.errno == 517 and "no DMA provider" in e.value.reason


def test_prep_submit_issue_status_through_the_mover():
    with pyvswitch.open("aarch64") as hv:       # two channels: the hypervisor holds one
        chan = hv.kernel.dma.request_channel(CAP_CONTEXT, "test-client")
        assert hv.kernel.sysfs.read("module/vsw_mover/refcnt") == "2"
        with pytest.raises(VswError) as e:
            hv.kernel.dma.request_channel(CAP_CONTEXT, "greedy")
        assert e.value.errno == errno.EBUSY
        vm = hv.create_vm("vm")
        pcpu = hv.pcpu(0)
        path = chan.context
        desc = chan.prep(lambda: pcpu.switch(path, hv.host.id, vm._slot))
        cookie = chan.submit(desc)
        assert chan.status(cookie) == IN_PROGRESS
        chan.issue_pending()
        assert chan.status(cookie) == COMPLETE and chan.result(cookie).path == "store"
        bad = chan.submit(chan.prep(lambda: pcpu.switch(path, hv.host.id, vm._slot)))  # host no longer runs
        chan.issue_pending()
        assert chan.status(bad) == ERROR
        with pytest.raises(VswError):
            chan.result(bad)
        chan.release()
        assert hv.kernel.sysfs.read("module/vsw_mover/refcnt") == "1"
        with pytest.raises(VswError) as e:
            chan.submit(desc)
        assert e.value.errno == errno.ENODEV


def host_modaliases():
    out = []
    for p in glob.glob("/sys/bus/pci/devices/*/modalias"):
        with open(p) as f:
            out.append(f.read().strip())
    return out


@pytest.mark.skipif(not host_modaliases(), reason="no PCI MODALIAS strings in this host's /sys")
def test_kmod_style_globs_match_the_hosts_real_modaliases():
    for ma in host_modaliases():
        m = re.fullmatch(r"pci:v(\w{8})d(\w{8})sv(\w{8})sd(\w{8})bc(\w\w)sc(\w\w)i(\w\w)", ma)
        assert m, ma
        v, d, sv, sd, bc, sc, i = (int(x, 16) for x in m.groups())
        cls = bc << 16 | sc << 8 | i
        assert alias_matches(pci_alias(v, d, sv, sd, cls), ma), ma
        assert alias_matches(pci_alias(v, d), ma), ma
        assert alias_matches(pci_alias(class_=cls), ma), ma
        assert alias_matches(pci_alias(v), ma)
        assert not alias_matches(pci_alias(v ^ 0xFFFF, d), ma)
        assert not alias_matches(pci_alias(v, d).replace("pci:", "usb:"), ma)


@pytest.mark.skipif(not glob.glob("/sys/bus/*/devices/*/modalias"), reason="no MODALIAS strings in /sys")
def test_our_alias_table_never_claims_a_host_device():
    k = Kernel()
    aliases = [a for a, _ in k.modules.alias_table()]
    for p in glob.glob("/sys/bus/*/devices/*/modalias")[:500]:
        try:
            with open(p) as f:
                ma = f.read().strip()
        except OSError:
            continue
        assert not any(alias_matches(a, ma) for a in aliases), ma


def test_the_built_in_modules_come_from_entry_points():
    k = Kernel()
    assert {"vsw_pcpu", "vsw_mem", "vsw_membus", "vsw_sbus", "vsw_store", "vsw_mover"} <= set(k.modules.modules)
    assert ("of:N*T*Cvsw,mover", "vsw_mover") in k.modules.alias_table()
    assert ("vsw:v00005653d00000001", "vsw_store") in k.modules.alias_table()
    assert k.modules.lookup("of:NxT<NULL>Cvsw,mover-v2Cvsw,mover")[0].name == "vsw_mover"
    assert os.path.basename(k.modules.get("vsw_store").source) == "pyvswitch.drivers.store"
