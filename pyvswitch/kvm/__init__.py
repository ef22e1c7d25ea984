"""pyvswitch.kvm - tools on the API for real guests on a KVM vCPU.

A preemptive ``Scheduler`` that runs guest programs (freestanding C built with
``pyvswitch guest build``, or the C core's built-in assembly programs) on one
vCPU through ``switch_context``, ``solo`` runs for reference, and the loaders
that place programs in guest memory.  The vCPU itself is hardware
(``pyvswitch.hw.kvm``: ``KvmVcpu``, ``KvmPcpu``); its driver is
``pyvswitch.drivers.pcpu_kvm`` (compatible ``vsw,pcpu-kvm``).
"""
from ..hw.kvm import (
           REG_DONE,
           REG_PROGRESS,
           REG_RESULT_HI,
           REG_RESULT_LO,
           KvmExit,
           KvmPcpu,
           KvmVcpu,
           why_unusable,
)
from ..guest.loader import programs
from .scheduler import Crash, Job, RunReport, Scheduler, load_program, solo

__all__ = ["Crash", "Job", "KvmExit", "KvmPcpu", "KvmVcpu", "REG_DONE", "REG_PROGRESS", "REG_RESULT_HI", "REG_RESULT_LO",
           "RunReport", "Scheduler", "load_program", "programs", "solo", "why_unusable"]
