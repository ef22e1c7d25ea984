/* vsw_bus.h - buses: the transaction-level cost model (bus.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_BUS_H
#define VSW_ABI_BUS_H

#include <stddef.h>
#include <stdint.h>

/* CDEF-BEGIN */
enum vsw_bus_kind { VSW_BUS_STORAGE = 0, VSW_BUS_MEMORY = 1 };
enum vsw_dir { VSW_DIR_SAVE = 0, VSW_DIR_LOAD = 1 };
/* ---- buses: transaction-level cost model ---- */
struct vsw_bus_params {
    uint32_t kind;              /* enum vsw_bus_kind */
    uint32_t width_bytes;       /* bytes per beat */
    uint32_t clock_mhz;         /* beats per microsecond */
    uint32_t setup_cycles;      /* per transaction */
    uint32_t shared;            /* 1: other masters contend for it */
    double utilisation;         /* background load from other masters, 0 <= u < 1 */
    uint32_t other_bytes;       /* size of another master's transaction */
    uint64_t seed;
    uint32_t masters;           /* storage bus: PCPUs that take turns on it (1: one, no arbitration) */
};
struct vsw_bus_counters {
    uint64_t transactions;
    uint64_t bytes;
    uint64_t busy_cycles;
    uint64_t wait_cycles;
};
struct vsw_bus;
int vsw_bus_create(const struct vsw_bus_params *params, struct vsw_bus **out);
void vsw_bus_destroy(struct vsw_bus *bus);
int vsw_bus_configure(struct vsw_bus *bus, const struct vsw_bus_params *params);
int vsw_bus_get_params(const struct vsw_bus *bus, struct vsw_bus_params *out);
int vsw_bus_counters(const struct vsw_bus *bus, struct vsw_bus_counters *out);
int vsw_bus_reset(struct vsw_bus *bus);
/* Issues one modelled transaction: returns its cost in picoseconds through *ps,
 * arbitration wait included, and counts it. */
int vsw_bus_transact(struct vsw_bus *bus, uint32_t bytes, uint64_t *wait_ps, uint64_t *ps);
/* CDEF-END */

#endif
