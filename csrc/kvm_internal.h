/*
 * kvm_internal.h - the KVM backend's private parts, shared by its files; not ABI.
 *
 *   kvm_vm.c     the VM: open and close, guest memory, CPUID, the MSR list, capabilities, vCPU reset
 *   kvm_state.c  the state: pull and push (the KVM structs, XSAVE, MSRs, sync regs), flush
 *   kvm_run.c    the run: the kick, arming, entering, exit decoding; run, complete, the slice loop, calibration
 *   kvm_bench.c  the ioctl benchmark (vsw_test.h)
 *   kvm_stub.c   -ENOSYS for every call where the build host has no KVM
 */
#ifndef VSW_KVM_INTERNAL_H
#define VSW_KVM_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vsw_internal.h"
#include "vsw_guest_abi.h"
#include <string.h>

#if defined(__linux__) && defined(__x86_64__) && defined(__has_include)
#if __has_include(<linux/kvm.h>)
#define HAVE_KVM 1
#endif
#endif

#ifdef HAVE_KVM
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSRS 64          /* records the layout's MSR group may hold (its size says how many) */
#define MSR_REC ((uint32_t)sizeof(struct kvm_msr_entry))  /* one record of the layout's MSR group */
#define KICK_SIGNAL (SIGRTMAX - 3)
#define DEVICE_WINDOW (2u << 20)     /* the guests map the device page as one 2 MiB page */
/* the calibration guest: page tables and a `jmp .` in a memslot of its own, past
 * the device window, which no guest's page tables map */
#define CAL_GPA (VSW_MMIO + DEVICE_WINDOW)
#define CAL_PAGES 5
#define CAL_CODE (CAL_GPA + 4 * 4096ull)

/* A group that is one KVM struct: the table, and what its fields mean, are in kvm_state.c. */
struct kvm_part {
    const char *group;
    const char *ioctl;      /* KVM_GET_<ioctl> / KVM_SET_<ioctl> */
    unsigned long get, set;
    uint32_t size;
    uint32_t sync;
    int cpl3_fixed;
    int lapic;              /* only with an in-kernel local APIC */
};
/* The table (kvm_state.c), NPARTS entries. */
extern const struct kvm_part kvm_parts[];
#define NPARTS 6
#define MODE_PARTS 2        /* sregs and xcrs go before XSAVE */
/* bits of `held`: the parts by index, then the XSAVE area (any guest changes it)
 * and the MSRs (WRMSR is privileged: fixed at CPL 3) */
#define HELD_XSAVE (1u << NPARTS)
#define HELD_MSRS (1u << (NPARTS + 1))

struct vsw_kvm {
    int sys_fd, vm_fd, vcpu_fd;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *mem;
    uint64_t mem_bytes;
    struct vsw_kvm_info info;
    /* offsets in the x86_64 register file: of parts[i], of the XSAVE area, of the MSRs */
    uint32_t part_off[NPARTS], g_xsave, g_msrs;
    uint32_t xsave_span;        /* bytes of the layout's XSAVE region (up to the XCRS group) */
    struct kvm_xsave *xsave;    /* KVM's buffer, in the host's layout (info.xsave) */
    struct kvm_cpuid2 *cpuid;   /* KVM_GET_SUPPORTED_CPUID as the probe read it: each vCPU's CPUID */
    unsigned long get_xsave;    /* KVM_GET_XSAVE2 where the area is larger than 4 KiB, else KVM_GET_XSAVE */
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[MAX_MSRS];
    } msrs;
    uint32_t nmsrs;             /* records in the layout's MSR group */
    int lapic;                  /* an in-kernel local APIC (split irqchip) */
    struct kvm_lapic_state lapic_reset;     /* a fresh vCPU's, for a context that holds none yet */
    union {                     /* a pulled part before it is compared: the largest of the table's structs */
        struct kvm_sregs sregs;
        struct kvm_xcrs xcrs;
        struct kvm_regs regs;
        struct kvm_debugregs debugregs;
        struct kvm_vcpu_events events;
        struct kvm_lapic_state lapic;
    } scratch;
    /* what KVM holds, in the layout's form, for the groups whose bit is set in
     * `held`: a push skips what is already there, a pull what cannot have changed */
    uint8_t shadow[VSW_MAX_CONTEXT];
    uint32_t held;
    uint32_t sync;              /* KVM_SYNC_X86_* this host carries in kvm_run */
    int sync_fresh;             /* kvm_run's sync regs are what KVM holds (after an exit, or a push) */
    int cpl3;                   /* the state pushed last runs at CPL 3 */
    timer_t timer;
    pid_t timer_tid;
    int have_timer;
    int masked;                 /* KVM_SET_SIGNAL_MASK done for this vCPU and timer_tid's mask */
    int read_pending;           /* an MMIO read exited: its value goes in before the next KVM_RUN */
    int io_pending;             /* an MMIO/PIO exit KVM completes at the next KVM_RUN: no pull or push before */
    uint8_t *cal;               /* the calibration guest's memslot */
    int next_vcpu_id;           /* KVM frees a vCPU only with its VM: a reset takes the next id */
    uint32_t events_flags;      /* VCPU_EVENTS state this VM carries (payload, triple fault): always set */
    uint32_t refused_msr;       /* the index of the MSR the last push could not set */
};

static inline uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static inline int err(void) { return -(errno ? errno : EIO); }

/* -ENXIO when the vCPU is gone (a vsw_kvm_reset that failed left none: reset again), else 0. */
static inline int kvm_vcpu_gone(const struct vsw_kvm *k) { return k->run ? 0 : -ENXIO; }

/* The MSR request: the layout's records for the MSRs this host has (kvm_state.c). */
uint32_t kvm_msr_request(struct vsw_kvm *k, const uint8_t *regs);
/* vsw_kvm_pull, refused (-ESRCH, nothing touched) unless machine `owner` runs on p (0: any) (kvm_state.c). */
int kvm_pull_for(struct vsw_kvm *k, struct vsw_pcpu *p, uint64_t owner);
/* After KVM_RUN: what the guest may have changed is no longer known to be held (kvm_state.c). */
void kvm_ran(struct vsw_kvm *k);

#endif /* HAVE_KVM */
#endif
