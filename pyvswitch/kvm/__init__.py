"""pyvswitch.kvm - real hardware behind the model: a KVM vCPU as the PCPU.

``KvmVcpu`` (the hardware model: a VM, one vCPU, guest memory; pull/push of the
whole vCPU state in C), ``KvmPcpu`` (a PCPU whose register file is that state),
the ``vsw_kvm`` driver module (compatible ``vsw,pcpu-kvm``), guest programs
assembled from source with the C core, and a preemptive ``Scheduler``.
"""
from .guests import PORT_DONE, PORT_PROGRESS, PORT_RESULT_HI, PORT_RESULT_LO, programs
from .scheduler import Job, RunReport, Scheduler, load_program, solo
from .vcpu import KvmExit, KvmPcpu, KvmVcpu, why_unusable

__all__ = ["Job", "KvmExit", "KvmPcpu", "KvmVcpu", "PORT_DONE", "PORT_PROGRESS", "PORT_RESULT_HI", "PORT_RESULT_LO",
           "RunReport", "Scheduler", "load_program", "programs", "solo", "why_unusable"]
