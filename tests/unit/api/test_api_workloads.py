"""Schedules for the model: generators, schedule files, and playing one."""
import collections
import errno

import pytest

import pyvswitch
from pyvswitch import workloads
from pyvswitch.replay import replay

NAMES = [f"vm{i}" for i in range(8)]


@pytest.mark.parametrize("gen", [workloads.round_robin, workloads.uniform, workloads.zipf, workloads.bursts])
def test_generators_are_reproducible_and_keep_each_machine_on_one_pcpu(gen):
    a, b = list(gen(NAMES, 400, pcpus=2)), list(gen(NAMES, 400, pcpus=2))
    assert a == b and len(a) == 400
    owner = {}
    for pcpu, name in a:
        assert owner.setdefault(name, pcpu) == pcpu         # never wanted on two PCPUs
    per_pcpu = collections.defaultdict(list)
    for pcpu, name in a:
        per_pcpu[pcpu].append(name)
    for seq in per_pcpu.values():
        assert all(x != y for x, y in zip(seq, seq[1:]))    # a switch goes somewhere else


def test_zipf_is_skewed_and_uniform_is_not():
    def shares(seq):
        c = collections.Counter(name for _, name in seq)
        return sorted(c.values(), reverse=True)
    z, u = shares(workloads.zipf(NAMES, 4000, s=1.2, seed=3)), shares(workloads.uniform(NAMES, 4000, seed=3))
    assert z[0] > 2 * z[-1] and u[0] < 1.5 * u[-1]


def test_bad_arguments_say_what_was_expected():
    for call in (lambda: list(workloads.round_robin(["a"], 3)), lambda: list(workloads.uniform(["a", "a"], 3)),
                 lambda: list(workloads.zipf(NAMES, 3, s=-1)), lambda: list(workloads.round_robin(NAMES, -1)),
                 lambda: list(workloads.bursts(NAMES, 3, burst=0))):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EINVAL


def test_schedule_files_in_both_forms_and_errors_name_the_line(tmp_path):
    f = tmp_path / "trace.txt"
    f.write_text('# a trace\n0,vm1\n\n{"pcpu": 0, "machine": "vm2"}\n0 , vm1\n')
    assert workloads.read_schedule(f) == [(0, "vm1"), (0, "vm2"), (0, "vm1")]
    for bad in ("0;vm1", "x,vm1", "-1,vm1", '{"pcpu": true, "machine": "a"}', '{"pcpu": 0}', "0,"):
        f.write_text(f"0,vm1\n{bad}\n")
        with pytest.raises(OSError) as e:
            workloads.read_schedule(f)
        assert e.value.errno == errno.EINVAL and "line 2" in str(e.value)


def test_play_switches_as_scheduled_and_every_machine_is_as_if_alone():
    with pyvswitch.open("aarch64") as hv:
        vms = [hv.create_vm(n) for n in NAMES[:4]]
        schedule = list(workloads.uniform([m.name for m in vms], 200, pcpus=2, seed=5))
        stats = workloads.play(hv, schedule, steps=10)
        assert stats.switches + stats.stays == 200 and stats.paths == {"store": stats.switches}
        s = stats.summary()
        assert s["min_ns"] <= s["median_ns"] <= s["p99_ns"] <= s["max_ns"]
        # what each VM ran: 10 steps each time it was switched away from (the host ran before pcpu0's first)
        running, ran = {0: "host", 1: None}, collections.Counter()
        for pcpu, name in schedule:
            if running[pcpu] not in (None, name):
                ran[running[pcpu]] += 10
            running[pcpu] = name
        assert all(hv.running(p).name == running[p] for p in (0, 1))
        for m in vms:
            assert m.state() == replay(ran[m.name], hv.layout), m.name
        with pytest.raises(OSError) as e:
            workloads.play(hv, [(0, "nobody")])
        assert e.value.errno == errno.ENOENT and "schedule step 0" in str(e.value)
