/* vsw_path.h - paths and the mover (path.c, cost.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_PATH_H
#define VSW_ABI_PATH_H

#include <stddef.h>
#include <stdint.h>
#include "vsw_store.h"
#include "vsw_bus.h"

/* CDEF-BEGIN */
enum vsw_path_kind { VSW_PATH_STORE = 0, VSW_PATH_MEMORY = 1 };

/* ---- paths: how contexts move between the register file and a store ----
 * VSW_PATH_STORE: the mover carries groups over the storage bus in bursts of at
 * most max_burst bytes, one run of adjacent groups per descriptor chain.
 * VSW_PATH_MEMORY: the prior art - the PCPU itself stores each register over the
 * shared memory bus into a MEM region (8 B per scalar store, 64 B per vector line). */
struct vsw_mover_params {
    uint32_t max_burst;         /* bytes per burst; a non-zero multiple of 8 */
    uint32_t write_threshold;   /* every save needs N < write_threshold bursts */
    uint32_t read_threshold;    /* every load needs M < read_threshold bursts */
};
struct vsw_path_limits {
    uint32_t full_units;        /* bursts (or transactions) for the whole context */
    uint32_t worst_save_units;  /* the most any set of dirty groups can need */
    uint32_t worst_load_units;
};
struct vsw_path;
/* params: required for VSW_PATH_STORE, ignored (may be NULL) for VSW_PATH_MEMORY.
 * A mover configuration that cannot meet its thresholds is refused with -E2BIG. */
int vsw_path_create(uint32_t kind, struct vsw_store *store, struct vsw_bus *bus,
                    const struct vsw_mover_params *params, struct vsw_path **out);
void vsw_path_destroy(struct vsw_path *path);
int vsw_path_configure(struct vsw_path *path, const struct vsw_mover_params *params);
/* The memory bus that prices the prior-art path in every switch's stats (NULL: none). */
int vsw_path_set_baseline(struct vsw_path *path, struct vsw_bus *membus);
int vsw_path_limits(const struct vsw_path *path, struct vsw_path_limits *out);
/* Bursts (or transactions) needed to move the groups in mask. */
int vsw_path_units(const struct vsw_path *path, uint32_t mask);
/* Prices moving the groups of mask over the path as one transfer, without moving
 * data or counting it: the switch's own cost model (the memory bus draws its waits
 * from its seeded sequence).  For the architect's model. */
int vsw_path_price(struct vsw_path *path, uint32_t mask, uint32_t *units, uint64_t *ps);
/* CDEF-END */

#endif
