"""Where KVM cannot be used, everything says why (these run on every host)."""
import json

import pytest

import pyvswitch
from pyvswitch.cli import main
from pyvswitch.kvm import why_unusable


@pytest.fixture
def no_kvm_platform(tmp_path):
    text = open(pyvswitch.__path__[0] + "/platforms/reference-kvm.toml").read().replace(
        'compatible = ["vsw,pcpu-kvm"]', 'compatible = ["vsw,pcpu-kvm"]\nparams = { kvm_device = "/nonexistent/kvm" }')
    assert "/nonexistent/kvm" in text
    f = tmp_path / "no-kvm.toml"
    f.write_text(text)
    return str(f)


def test_why_unusable_names_the_cause(tmp_path):
    assert "does not exist" in why_unusable(str(tmp_path / "kvm"))
    (tmp_path / "notkvm").write_text("")
    assert why_unusable(str(tmp_path / "notkvm")) is not None


def test_probe_reports_the_kvm_pcpu_failing_and_why(no_kvm_platform, capsys):
    code = main(["probe", "--platform", no_kvm_platform, "--json", "--no-host"])
    doc = json.loads(capsys.readouterr().out)
    pcpu = next(d for d in doc["devices"] if d["name"] == "pcpu0")
    assert pcpu["state"] == "failed" and "/nonexistent/kvm does not exist" in pcpu["error"]
    assert code == 2 and doc["exit_status"] == 2 and not doc["usable"]     # as open() refuses it: no switch path


def test_open_and_demo_say_why(no_kvm_platform, capsys):
    with pytest.raises(pyvswitch.VswError) as e:
        pyvswitch.open(no_kvm_platform)
    assert "pcpu0 (pcpu): probe refused" in str(e.value) and "does not exist" in str(e.value)
    assert main(["demo", "--kvm", "--platform", no_kvm_platform]) == 2
    err = capsys.readouterr().err
    assert "pcpu0 (pcpu): probe refused" in err or "needs a usable /dev/kvm" in err, err


def test_a_kvm_pcpu_needs_the_x86_64_layout(tmp_path):
    text = open(pyvswitch.__path__[0] + "/platforms/reference-kvm.toml").read().replace(
        'compatible = ["vsw,pcpu-kvm"]', 'compatible = ["vsw,pcpu-kvm"]\nparams = { layout = "aarch64" }')
    assert "aarch64" in text
    with pytest.raises(pyvswitch.VswError) as e:
        pyvswitch.open(text)
    assert "x86_64" in str(e.value)
