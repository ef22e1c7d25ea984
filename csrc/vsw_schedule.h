/* vsw_schedule.h - a schedule of switches in one call (schedule.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_SCHEDULE_H
#define VSW_ABI_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>
#include "vsw_switch.h"

/* CDEF-BEGIN */
/* ---- a schedule of switches in one call (schedule.c) ---- */
enum vsw_order { VSW_ORDER_ROUND_ROBIN = 0, VSW_ORDER_RANDOM = 1, VSW_ORDER_SEQUENCE = 2 };
struct vsw_schedule {
    uint64_t switches;          /* how many, at most */
    uint64_t steps;             /* workload steps on each machine before it is switched out */
    uint32_t order;             /* enum vsw_order */
    uint32_t steps_done;        /* 1: the first machine already ran its steps (a refused switch is being retried) */
    uint64_t seed;              /* of the random order */
    const uint32_t *sequence;   /* VSW_ORDER_SEQUENCE: the machine each switch loads (`switches` indices,
                                 * none the machine before it: -EINVAL, nothing run) - a model's schedule */
    uint32_t dirty_mask;        /* groups marked dirty before each switch, beside what the workload wrote */
    uint32_t reserved;
    uint64_t *modeled_ps;       /* optional: each switch's modelled ps ... */
    uint64_t *baseline_ps;      /* ... and the prior art's, for percentiles */
};
struct vsw_schedule_stats {
    uint64_t switches, steps;
    uint64_t save_units, load_units, bytes_saved, bytes_loaded;
    uint64_t data_ps, modeled_ps, baseline_ps, min_modeled_ps, max_modeled_ps;
    uint64_t hits, misses, writebacks, bytes_fetched, bytes_written_back, cache_ps;
    uint32_t current;           /* index of the machine running at the end */
    uint32_t steps_done;        /* 1: it ran its steps, and its switch was refused (retry with plan->steps_done) */
};
/* Runs `plan` on PCPU p over the n >= 2 contexts, ctxs[current] running now.
 * Stops early when *stop becomes non-zero (another thread may set it) or a switch
 * is refused (returned; everything before it is done, *out says how far). */
int vsw_run_schedule(struct vsw_pcpu *p, struct vsw_ctx *const *ctxs, uint32_t n, uint32_t current,
                     const struct vsw_schedule *plan, const volatile int *stop, struct vsw_schedule_stats *out);

/* CDEF-END */

#endif
