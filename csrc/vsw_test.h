/*
 * vsw_test.h - what tests and benchmarks call and a product never does: fault
 * injection, the switch loop and this host's costs timed in C, the KVM ioctl
 * benchmark and preemption calibration.  Not part of vsw.h; the cffi module
 * declares it too, so tests and scripts/ reach it.
 */
#ifndef VSW_TEST_H
#define VSW_TEST_H

#include "vsw.h"

/* CDEF-BEGIN */
enum vsw_fault_kind { VSW_FAULT_NONE = 0, VSW_FAULT_SAVE = 1, VSW_FAULT_LOAD = 2 };

/* Fault injection: flips a byte of the committed bank of group `group`. */
int vsw_store_corrupt(struct vsw_store *s, uint32_t slot, uint32_t group, uint32_t byte);

/* Fails unit `unit` of the next save or load transfer with -EIO (VSW_FAULT_NONE disarms). */
int vsw_path_inject(struct vsw_path *path, uint32_t kind, uint32_t unit);

enum vsw_cache_fault { VSW_CACHE_FAULT_NONE = 0, VSW_CACHE_FAULT_FETCH = 1, VSW_CACHE_FAULT_WRITEBACK = 2 };
/* Fails the next fetch (or write-back) with -EIO after `group` groups moved. */
int vsw_cache_inject(struct vsw_cache *c, uint32_t kind, uint32_t group);

struct vsw_kvm_bench {
    uint64_t iterations;
    uint64_t get_ns[8];         /* totals per ioctl, in the order pull and push issue them ... */
    uint64_t set_ns[8];
    char names[8][16];          /* ... named here: "SREGS", ..., "XSAVE", "MSRS" ("" past the last) */
};
/* Preemption measured on the host: n runs of a private `jmp .` guest (a memslot
 * of its own, past the device page) each armed for slice_ns; took_ns[i] is the
 * wall time from arming to KVM_RUN's return.  The vCPU holds no context
 * afterwards: push one before running a guest. */
int vsw_kvm_calibrate(struct vsw_kvm *k, uint64_t slice_ns, uint32_t n, uint64_t *took_ns);
/* The same GET (then SET) ioctls as pull (push), issued straight from C and timed. */
int vsw_kvm_bench_ioctls(struct vsw_kvm *k, uint64_t iterations, struct vsw_kvm_bench *out);

/* ---- benchmark support: the switch loop timed in C, beside memcpy of the same bytes ---- */
struct vsw_bench_result {
    uint64_t switches;
    uint64_t bytes;             /* moved by the switches (saved + loaded) */
    uint64_t switch_ns;         /* wall time of the switch loop */
    uint64_t memcpy_ns;         /* wall time of memcpy moving the same bytes in the same chunks */
    /* where the switch's time goes beyond the copy: */
    uint64_t data_ns;           /* the same checked copies alone (save with checks, load verified) */
    uint64_t atomics_ns;        /* the atomic operations a switch makes (gate, claim, release, counters) alone */
};
/* Round-robin over the machines (slots[i] owned by owners[i]; the PCPU must run
 * owners[0]), marking dirty_mask before each switch, for `switches` switches. */
int vsw_bench_switch_loop(struct vsw_pcpu *p, struct vsw_path *path, const uint32_t *slots,
                          const uint64_t *owners, uint32_t machines, uint64_t switches, uint32_t dirty_mask,
                          struct vsw_bench_result *out);
/* ---- calibration: this host's own costs (calibrate.c; not on any switch path) ---- */
struct vsw_calibration {
    uint64_t xcr0;              /* the features the OS enabled */
    uint64_t xsave_bytes;       /* CPUID.(0xD, 0).EBX: their XSAVE area */
    uint64_t iterations;
    uint64_t xsave_xrstor_ns;   /* wall time of `iterations` XSAVE + XRSTOR pairs */
    uint64_t xsave_xrstor_tsc;  /* the same in TSC ticks */
};
/* -EOPNOTSUPP where the host has no XSAVE (not x86_64, or the OS did not enable it). */
int vsw_calibrate_xsave(uint64_t iterations, struct vsw_calibration *out);
/* `iterations` memcpy of `bytes` between two hot buffers: wall ns and TSC ticks in all. */
int vsw_calibrate_memcpy(uint32_t bytes, uint64_t iterations, uint64_t *ns, uint64_t *tsc);
/* CDEF-END */

#endif
