/* vsw_switch.h - the switch (switch.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_SWITCH_H
#define VSW_ABI_SWITCH_H

#include <stddef.h>
#include <stdint.h>
#include "vsw_ctx.h"

/* CDEF-BEGIN */
/* ---- the switch ----
 * Saves the running machine's dirty groups into its slot and loads machine `to`
 * from its slot.  Atomic: on any error the register file and both slots are as
 * before.  from_owner 0 with an idle PCPU only loads; to_owner 0 only saves and
 * leaves the PCPU idle.  The path's baseline bus, if set, prices the prior art. */
enum vsw_cache_result { VSW_CACHE_NONE = 0, VSW_CACHE_HIT = 1, VSW_CACHE_MISS = 2 };
struct vsw_switch_stats {
    uint32_t path;              /* enum vsw_path_kind */
    uint32_t save_units;        /* N bursts (store path) or stores (memory path) */
    uint32_t load_units;        /* M bursts (store path) or loads (memory path) */
    uint32_t save_mask;         /* groups saved */
    uint64_t bytes_saved;
    uint64_t bytes_loaded;
    uint64_t data_ps;           /* data movement on this path */
    uint64_t exit_entry_ps;     /* fixed VM exit + entry, the same on both paths */
    uint64_t modeled_ps;        /* data_ps + exit_entry_ps */
    uint64_t baseline_ps;       /* the prior-art path for the same groups, exit/entry included */
    uint64_t generation;        /* of the outgoing machine's slot after the save */
    /* the store as a cache (cache.c): what making `to` resident took, in modeled_ps */
    uint32_t cache;             /* enum vsw_cache_result */
    uint32_t reserved;
    uint64_t bytes_fetched;     /* `to`'s context from its home in MEM */
    uint64_t bytes_written_back; /* the victim's changed groups to its home */
    uint64_t cache_ps;          /* fetch + write-back */
};

/* The switch (the only one) between two contexts on one path; frm NULL: the
 * PCPU is idle; to NULL: save and leave it idle.  -EXDEV when they live behind
 * different paths; -ESTALE for a handle of another epoch (or retired). */
int vsw_switch(struct vsw_pcpu *p, const struct vsw_ctx *frm, const struct vsw_ctx *to,
               struct vsw_switch_stats *st);
/* CDEF-END */

#endif
