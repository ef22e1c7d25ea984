/* vsw_kvm.h - a PCPU backed by a KVM vCPU (kvm_vm.c, kvm_state.c, kvm_run.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_KVM_H
#define VSW_ABI_KVM_H

#include <stddef.h>
#include <stdint.h>
#include "vsw_xsave.h"
#include "vsw_ctx.h"

/* CDEF-BEGIN */
/* ---- a PCPU backed by a KVM vCPU (Linux x86_64 with /dev/kvm; -ENOSYS elsewhere) ----
 * One VM with one vCPU and one block of guest memory.  pull copies the vCPU's
 * whole state into the PCPU register file (KVM_GET_REGS, SREGS, XSAVE, XCRS,
 * DEBUGREGS, VCPU_EVENTS and the layout's MSRs the host has), marking dirty the
 * groups that changed; push is the reverse; run enters the guest for at most a
 * slice, preempting it with a timer signal. */
enum vsw_kvm_exit_reason {
    VSW_KVM_EXIT_PREEMPTED = 0, VSW_KVM_EXIT_IO = 1, VSW_KVM_EXIT_HLT = 2, VSW_KVM_EXIT_SHUTDOWN = 3,
    VSW_KVM_EXIT_OTHER = 4, VSW_KVM_EXIT_BAD_IO = 5
};
/* vsw_kvm_exit.reg of an exit that names no device register */
enum vsw_kvm_reg { VSW_KVM_NO_REG = 0xffff };
struct vsw_kvm_info {
    int32_t api_version;
    uint32_t xsave_size;        /* bytes KVM_GET_XSAVE moves */
    struct vsw_xsave_map xsave; /* how this host lays the XSAVE area out (CPUID leaf 0xD) */
    uint64_t msr_present;       /* bit i: the layout's i-th MSR exists on this host */
    uint32_t host_msrs;         /* MSRs in KVM_GET_MSR_INDEX_LIST */
    uint32_t lapic;             /* 1: an in-kernel local APIC, whose state is the context's lapic group */
    uint64_t supported_xcr0;
    uint64_t mem_bytes;
};
/* What this host's KVM offers, read through /dev/kvm alone (no VM is created):
 * vsw_kvm_probe() fills it as far as it gets and says which step failed; the
 * caller keeps it where it needs it.  vsw_kvm_open() takes the same facts the
 * same way, so a host the probe passes is one open accepts (short of creating
 * the VM, which only open does). */
enum vsw_kvm_cap {
    VSW_KVM_CAP_XSAVE = 1, VSW_KVM_CAP_XCRS = 2, VSW_KVM_CAP_DEBUGREGS = 4, VSW_KVM_CAP_VCPU_EVENTS = 8,
    VSW_KVM_CAP_XSAVE2 = 16, VSW_KVM_CAP_IMMEDIATE_EXIT = 32, VSW_KVM_CAP_SYNC_REGS = 64,
    VSW_KVM_CAP_SPLIT_IRQCHIP = 128, VSW_KVM_CAP_EXCEPTION_PAYLOAD = 256,
    VSW_KVM_CAPS_REQUIRED = 15      /* what pull and push need: XSAVE, XCRS, DEBUGREGS, VCPU_EVENTS */
};
/* The step of the probe that failed. */
enum vsw_kvm_probe_step {
    VSW_KVM_PROBE_OK = 0, VSW_KVM_PROBE_BUILD = 1, VSW_KVM_PROBE_OPEN = 2, VSW_KVM_PROBE_API = 3,
    VSW_KVM_PROBE_CAPS = 4, VSW_KVM_PROBE_CPUID = 5, VSW_KVM_PROBE_XSAVE = 6, VSW_KVM_PROBE_MSRS = 7
};
struct vsw_kvm_probe {
    int32_t error;              /* 0: the backend can run here; else what `failed` returned (-errno) */
    uint32_t failed;            /* enum vsw_kvm_probe_step */
    int32_t api_version;        /* KVM_GET_API_VERSION; -1 when not reached */
    uint32_t caps;              /* VSW_KVM_CAP_* the host has */
    uint32_t missing;           /* of VSW_KVM_CAPS_REQUIRED, what it lacks */
    uint32_t xsave_size;        /* bytes KVM_GET_XSAVE(2) moves */
    struct vsw_xsave_map xsave; /* how this host lays the XSAVE area out (CPUID leaf 0xD) */
    uint64_t supported_xcr0;
    uint64_t msr_present;       /* bit i: the layout's i-th MSR exists on this host */
    uint32_t host_msrs;         /* MSRs in KVM_GET_MSR_INDEX_LIST */
    uint32_t layout_msrs;       /* records in the layout's MSR group */
};
/* -ENOENT/-EACCES (open), -EPROTONOSUPPORT (API), -EOPNOTSUPP (a required
 * capability), -EPROTO/-ERANGE (the XSAVE layout), -ENOSYS (no KVM in this build);
 * the same in out->error; -EINVAL without out. */
int vsw_kvm_probe(const char *path, struct vsw_kvm_probe *out);
struct vsw_kvm_exit {
    uint32_t reason;            /* enum vsw_kvm_exit_reason */
    uint32_t kvm_reason;        /* KVM's exit_reason */
    uint16_t port;              /* a PIO access (kvm_reason KVM_EXIT_IO, always BAD_IO): its I/O port; else 0 */
    uint8_t size;
    uint8_t write;
    uint16_t reg;               /* IO: the device register ((address - VSW_MMIO) / 4); else VSW_KVM_NO_REG */
    uint16_t reserved;
    uint64_t data;              /* what was written (up to 8 bytes) */
    uint64_t run_ns;            /* wall time inside KVM_RUN */
    uint64_t addr;              /* an MMIO access: the guest-physical address; a PIO access: the port */
};
struct vsw_kvm;
int vsw_kvm_open(const char *path, uint64_t mem_bytes, struct vsw_kvm **out, struct vsw_kvm_info *info);
void vsw_kvm_close(struct vsw_kvm *k);
void *vsw_kvm_memory(struct vsw_kvm *k);
/* Gives bytes [offset, offset + len) of guest memory back as zeros without touching them (page aligned). */
int vsw_kvm_clear(struct vsw_kvm *k, uint64_t offset, uint64_t len);
int vsw_kvm_pull(struct vsw_kvm *k, struct vsw_pcpu *p);
int vsw_kvm_push(struct vsw_kvm *k, struct vsw_pcpu *p);
/* Enters the guest for at most slice_ns (a kick that fires before KVM_RUN is
 * entered still ends it).  An IO or BAD_IO exit leaves the access pending:
 * KVM completes it at the next vsw_kvm_run or vsw_kvm_complete, and pull, push
 * and flush refuse (-EBUSY) until then.  BAD_IO: an access the device does not
 * answer (not one of its registers, or at the wrong width or direction, or an
 * I/O port): writes are dropped, reads return 0. */
int vsw_kvm_run(struct vsw_kvm *k, uint64_t slice_ns, struct vsw_kvm_exit *exit);
/* Completes the pending access without running the guest further (KVM_RUN with
 * immediate_exit): 0 when it is complete (or none was pending), 1 when the
 * access was split and its next part exited (in *exit: handle it, then call
 * again). */
int vsw_kvm_complete(struct vsw_kvm *k, struct vsw_kvm_exit *exit);
/* The value an MMIO read that just exited returns to the guest; it completes at
 * the next vsw_kvm_run, which must come before any pull (-EINVAL: no read pending). */
int vsw_kvm_complete_read(struct vsw_kvm *k, uint64_t value);
/* A fresh vCPU in place of one a guest's triple fault left undefined (push a state before running it). */
int vsw_kvm_reset(struct vsw_kvm *k);
/* Applies what a push left in kvm_run and forgets what pull and push know KVM
 * holds: the next pull GETs every group from KVM (for tests and tools). */
int vsw_kvm_flush(struct vsw_kvm *k);
/* After a push refused with -EINVAL for an MSR: that MSR's index (0: it was another group). */
uint32_t vsw_kvm_refused_msr(const struct vsw_kvm *k);
/* Slices and switches with no return to the caller between them: the slice
 * loop in C.  The vCPU holds ctxs[current]'s state (pushed; that machine runs on
 * p).  Each turn: a slice of slice_ns; when the timer ends it, the next context
 * in round-robin order (ctxs[(current + 1) % n]) gets the vCPU: pull, the same
 * vsw_switch the API's switch calls (atomic, through p's gate), push.  It
 * stops, to let the caller act, at the first exit other than the timer's (a
 * device access: `exit`, the slice in progress `used_ns` old), when a switch is
 * refused (`r`: the pull or the switch; nothing of it done, `current` still on
 * the vCPU), when the push after a switch is refused (`r`, -EAGAIN while a
 * migration holds the PCPU: `current` switched in but not yet in the vCPU),
 * after max_slices slices, or once max_ns have passed (a slice always ends first).
 * Resuming after an exit the caller handled: complete_first completes the
 * access ctxs[current] made inside it first (KVM_RUN with immediate_exit; the
 * next part of a split access stops the loop again at once, STOP_EXIT), and
 * resume_ns (the slice's age at that exit) makes the first slice what is left
 * of it - none when its time is up - counted from its start. */
enum vsw_kvm_stop { VSW_KVM_STOP_BUDGET = 0, VSW_KVM_STOP_EXIT = 1, VSW_KVM_STOP_REFUSED = 2,
                    VSW_KVM_STOP_UNPUSHED = 3 };
struct vsw_kvm_loop {
    /* in */
    uint64_t slice_ns;
    uint64_t max_slices;        /* >= 1 */
    uint64_t max_ns;            /* 0: no bound */
    uint32_t switch_first;      /* 1: ctxs[current] has had its slice: switch before the first */
    uint32_t complete_first;    /* 1: complete ctxs[current]'s pending access first (else one pending: -EBUSY) */
    uint64_t *took_ns;          /* optional, max_slices entries: each timer-ended slice's wall ns */
    uint64_t *own_ns;           /* n entries, added to: each context's time inside KVM_RUN */
    uint64_t *slices_of;        /* n entries, added to: each context's slices */
    uint64_t resume_ns;         /* with switch_first 0: ctxs[current]'s slice in progress is this old */
    /* out */
    uint32_t stopped;           /* enum vsw_kvm_stop */
    uint32_t current;           /* the context the vCPU holds */
    int32_t r;                  /* STOP_REFUSED: what the pull (-ESRCH: another caller switched p) or vsw_switch returned */
    uint32_t reserved2;
    uint64_t slices, preempted, switches;   /* preempted: entries written to took_ns */
    uint64_t guest_ns, pull_ns, push_ns, switch_ns;
    uint64_t save_units, load_units;
    uint64_t paths[2];          /* switches per enum vsw_path_kind */
    uint64_t used_ns;           /* STOP_EXIT: wall ns of the slice so far (exit.run_ns not in own_ns) */
    struct vsw_kvm_exit exit;
};
int vsw_kvm_loop(struct vsw_kvm *k, struct vsw_pcpu *p, struct vsw_ctx *const *ctxs, uint32_t n,
                 uint32_t current, struct vsw_kvm_loop *L);
/* CDEF-END */

#endif
