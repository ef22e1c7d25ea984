/* vsw_pcpu.h - the PCPU register file (pcpu.c, gate.c, workload.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_PCPU_H
#define VSW_ABI_PCPU_H

#include <stddef.h>
#include <stdint.h>
#include "vsw_trace.h"

/* CDEF-BEGIN */
/* ---- PCPU ---- */
struct vsw_pcpu_params {
    uint32_t layout;
    uint32_t cpu_mhz;
    uint32_t exit_entry_cycles; /* VM exit + entry, paid on both paths */
};
struct vsw_pcpu_state {
    uint64_t owner;             /* running machine; 0 while idle */
    uint32_t slot;
    uint32_t dirty_mask;
    uint64_t now_ps;            /* model time */
    uint64_t switches;
    uint64_t epoch;             /* what context handles must carry (gate.c) */
};
struct vsw_pcpu;
int vsw_pcpu_create(const struct vsw_pcpu_params *p, struct vsw_pcpu **out);
void vsw_pcpu_destroy(struct vsw_pcpu *p);
int vsw_pcpu_configure(struct vsw_pcpu *p, uint32_t cpu_mhz, uint32_t exit_entry_cycles);
int vsw_pcpu_state(const struct vsw_pcpu *p, struct vsw_pcpu_state *out);
/* The machine running (0: idle), read without entering. */
uint64_t vsw_pcpu_owner(const struct vsw_pcpu *p);
/* The quiesce point (gate.c).  freeze waits for the call inside to leave and
 * then refuses every other thread with -EAGAIN (a PCPU another thread froze is
 * taken over: migrations are serialised by the caller); thaw opens it again and
 * sets the epoch context handles must carry;
 * retire refuses everyone with -ENODEV for good (the memory stays valid until
 * destroy, so a late caller is refused, never let into freed hardware). */
int vsw_pcpu_freeze(struct vsw_pcpu *p);
int vsw_pcpu_thaw(struct vsw_pcpu *p, uint64_t epoch);
/* While the caller has it frozen: the epoch handles must carry from now on (a
 * migration loads machines through their new handles before it thaws). */
int vsw_pcpu_rekey(struct vsw_pcpu *p, uint64_t epoch);
int vsw_pcpu_retire(struct vsw_pcpu *p);
/* The register file: layout size bytes, 64-byte aligned, owned by the PCPU.
 * Write it only through vsw_pcpu_write so the dirty groups are known. */
void *vsw_pcpu_regs(struct vsw_pcpu *p);
/* Register access of machine `owner` (0: whichever runs), atomic against
 * switches: -ESRCH (nothing done) when another machine runs or none. */
int vsw_pcpu_read(struct vsw_pcpu *p, uint64_t owner, uint32_t offset, void *buf, uint32_t len);
int vsw_pcpu_write(struct vsw_pcpu *p, uint64_t owner, uint32_t offset, const void *buf, uint32_t len);
int vsw_pcpu_mark_dirty(struct vsw_pcpu *p, uint32_t mask);
/* Deterministic workload: the state after `steps` depends only on the state before. */
int vsw_pcpu_run(struct vsw_pcpu *p, uint64_t steps);
int vsw_pcpu_set_trace(struct vsw_pcpu *p, struct vsw_trace *t);
int vsw_pcpu_export(struct vsw_pcpu *p, uint64_t owner, uint64_t generation, void *out, size_t len);
/* CDEF-END */

#endif
