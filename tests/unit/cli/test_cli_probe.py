"""The probe script: lspci -k style text, JSON, exit status; the host section."""
import errno
import json
import os
import subprocess
import sys

import pytest
from locations import SCRIPTS

from pyvswitch.cli import main
from pyvswitch.host import host_report, kvm_info


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_text_on_the_reference_platform(capsys):
    code, out, _ = run(capsys, "probe", "--no-host")
    assert code == 0
    assert "Fast switch path: usable" in out
    for line in ("Kernel driver in use: vsw-mover", "Kernel modules: vsw_store", "5653:0001"):
        assert line in out
    assert "vsw:v00005653d00000001" not in out                  # modaliases with -v
    code, out, _ = run(capsys, "probe", "--no-host", "-v")
    for line in ("vsw:v00005653d00000001", "of:Nmover0T<NULL>Cvsw,mover"):
        assert line in out


def test_json_and_exit_status_without_the_mover(capsys):
    code, out, _ = run(capsys, "probe", "--platform", "no-mover", "--json", "--no-host")
    doc = json.loads(out)
    assert code == 1 and doc["exit_status"] == 1 and doc["fast_path"] is False
    assert "no vsw,mover" in doc["reason"]
    kinds = {d["name"]: d["kind"] for d in doc["devices"]}
    assert kinds["store0"] == "context-store" and "mover0" not in kinds


def test_bad_platform_exits_2_with_the_reason(capsys, tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[[device]]\nname = 1\n")
    code, out, err = run(capsys, "probe", "--platform", str(f))
    assert code == 2 and out == "" and str(f) in err and "key 'name'" in err


def test_host_section_in_json(capsys):
    code, out, _ = run(capsys, "probe", "--json")
    doc = json.loads(out)
    host = doc["host"]
    assert set(host) >= {"udev", "kvm", "dma", "pci"}
    assert host["kvm"]["present"] == os.path.exists("/dev/kvm")


@pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="no /dev/kvm on this host")
def test_kvm_is_reported_with_its_api_version():
    info = kvm_info()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        assert not info.accessible and "cannot open" in info.reason
    else:
        assert info.accessible and info.api_version == 12 and info.usable
        assert "XSAVE" in info.capabilities


def test_missing_kvm_says_why(tmp_path):
    info = kvm_info(str(tmp_path / "kvm"))
    assert not info.present and not info.usable and "does not exist" in info.reason


def test_pci_devices_match_sysfs():
    rep = host_report()
    sysfs = sorted(os.listdir("/sys/bus/pci/devices")) if os.path.isdir("/sys/bus/pci/devices") else []
    assert sorted(d.name for d in rep.pci) == sysfs


def test_degrades_without_pyudev(tmp_path):
    # a pyudev that cannot load: the probe falls back to /sys and says so
    (tmp_path / "pyudev").mkdir()
    (tmp_path / "pyudev" / "__init__.py").write_text("raise ImportError('libudev.so.1: cannot open')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-m", "pyvswitch", "probe", "--json"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["host"]["udev"].startswith("sysfs (pyudev unavailable")
    assert len(doc["host"]["pci"]) == len(os.listdir("/sys/bus/pci/devices")) if os.path.isdir("/sys/bus/pci/devices") else True


def test_scripts_probe_is_a_thin_wrapper():
    r = subprocess.run([sys.executable, str(SCRIPTS / "probe"),
                        "--no-host"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Fast switch path: usable" in r.stdout


def test_demo_checks_state_and_reports_both_paths(capsys):
    code, out, _ = run(capsys, "demo", "--switches", "200", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"]
    assert doc["phases"]["first"]["path"] == "store" and doc["phases"]["fallback"]["path"] == "memory"
    assert doc["phases"]["restored"]["path"] == "store"
    assert doc["phases"]["fallback"]["data_ns"] > doc["phases"]["first"]["data_ns"]


def _broken_kvm(tmp_path):
    """reference-kvm with a KVM device that is not there: the PCPU's probe fails on any host."""
    from importlib import resources
    text = (resources.files("pyvswitch.platforms") / "reference-kvm.toml").read_text()
    broken = text.replace('compatible = ["vsw,pcpu-kvm"]',
                          'compatible = ["vsw,pcpu-kvm"]\nparams = { kvm_device = "/nonexistent/kvm" }', 1)
    assert broken != text
    f = tmp_path / "kvm-broken.toml"
    f.write_text(broken)
    return str(f)


def test_a_failed_pcpu_means_no_switch_path_exit_2_saying_why(capsys, tmp_path):
    plat = _broken_kvm(tmp_path)
    code, out, _ = run(capsys, "probe", "--platform", plat, "--no-host")
    assert code == 2
    assert "Fast switch path: usable" not in out and "Switch path: NONE usable" in out
    assert "pcpu0 (pcpu): probe refused" in out and "/nonexistent/kvm" in out
    code, out, _ = run(capsys, "probe", "--platform", plat, "--no-host", "--json")
    doc = json.loads(out)
    assert code == 2 and doc["exit_status"] == 2 and doc["usable"] is False and doc["fast_path"] is False
    assert any("pcpu0" in p for p in doc["problems"]) and "no switch path" in doc["reason"]


@pytest.mark.parametrize("name", ["reference", "no-mover", "broken-kvm"])
def test_the_probe_verdict_agrees_with_open(capsys, tmp_path, name):
    import pyvswitch
    plat = _broken_kvm(tmp_path) if name == "broken-kvm" else name
    code, _, _ = run(capsys, "probe", "--platform", plat, "--no-host")
    try:
        with pyvswitch.open(plat) as hv:
            opened = hv.path
    except pyvswitch.VswError as exc:
        assert exc.errno == errno.ENODEV and code == 2
        return
    assert code == {"store": 0, "memory": 1}[opened]
