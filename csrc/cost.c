/*
 * cost.c - what a transfer would cost on the modelled hardware: the mover's
 * bursts over the storage bus, or the PCPU's register stores over the memory
 * bus (transaction-level: wait + setup + beats, bus.c), traced per burst or
 * store when a trace is attached; and the prior art's price for the same
 * groups, the baseline every store-path switch reports beside its own.
 */
#include "transfer.h"

static void put(struct vsw_trace *t, const struct vsw_trace_record *proto, uint32_t dir, uint32_t group,
                uint64_t start, uint64_t ps, uint32_t bytes, uint32_t count, uint32_t bus)
{
    if (!t)
        return;
    struct vsw_trace_record r = *proto;
    r.kind = VSW_TRACE_BURST;
    r.bus = (uint8_t)bus;
    r.dir = (uint8_t)dir;
    r.group = (uint8_t)group;
    r.start_ps = start;
    r.end_ps = start + ps;
    r.bytes = bytes;
    r.count = count;
    vsw_trace_put(t, &r);
}

/* The mover's cost: bursts over the storage bus - plain arithmetic, tallied for
 * the switch to count once (traced per burst) - plus, on a bus several PCPUs
 * share, the wait for the transfers of the others ahead of it. */
static uint64_t store_cost(const struct vsw_path *path, struct vsw_trace *t, uint32_t dir, uint32_t mask,
                           uint64_t start_ps, const struct vsw_trace_record *proto, uint32_t *units,
                           struct vsw_tally *tally)
{
    const struct vsw_layout_def *L = layout(path);
    uint32_t n = 0;
    const struct vsw_bus *bus = path->bus;
    uint32_t mb = path->mp.max_burst;
    uint64_t cycles = 0, full = vsw_bus_cycles(bus, mb);
    FOR_EACH_RUN(mask, first, last) {
        uint64_t bytes = run_bytes(L, first, last), whole = bytes / mb, rest = bytes % mb;
        if (t) {        /* one slice per burst; times from the running total, so they add up */
            uint64_t pos = L->groups[first].offset;
            uint32_t g = first;
            for (uint64_t left = bytes; left; ) {
                uint32_t len = left < mb ? (uint32_t)left : mb;
                while (L->groups[g].offset + L->groups[g].size <= pos)
                    g++;
                uint64_t c = vsw_bus_cycles(bus, len);
                put(t, proto, dir, g, start_ps + vsw_bus_cycles_to_ps(bus, cycles),
                    vsw_bus_cycles_to_ps(bus, cycles + c) - vsw_bus_cycles_to_ps(bus, cycles), len, 1,
                    VSW_BUS_STORAGE);
                cycles += c;
                pos += len;
                left -= len;
            }
        } else {
            cycles += whole * full + (rest ? vsw_bus_cycles(bus, (uint32_t)rest) : 0);
        }
        n += (uint32_t)whole + (rest != 0);
        tally->bytes += bytes;
    }
    tally->transactions += n;
    tally->cycles += cycles;
    *units = n;
    uint64_t busy = vsw_bus_cycles_to_ps(bus, cycles);
    return busy + (bus->p.masters > 1 && busy ? vsw_bus_arbitrate(path->bus, start_ps, busy) : 0);
}

/* The prior art's cost: each register store a transaction on the memory bus,
 * whose waits are drawn under its lock - and counted there when `count` (a
 * switch), not when the path is only priced. */
static uint64_t memory_cost(struct vsw_path *path, struct vsw_trace *t, uint32_t dir, uint32_t mask,
                            uint64_t start_ps, const struct vsw_trace_record *proto, uint32_t *units, bool count)
{
    const struct vsw_layout_def *L = layout(path);
    uint32_t n = 0;
    uint64_t ps = 0;
    for (uint32_t g = 0; g < L->ngroups; g++) {
        if (!(mask & (1u << g)))
            continue;
        const struct vsw_group_info *gi = &L->groups[g];
        uint32_t stores = pcpu_stores(gi), gran = store_granule(gi);
        uint64_t cost = stores ? vsw_bus_cost(path->bus, stores, gran, NULL, count) : 0;
        put(t, proto, dir, g, start_ps + ps, cost, stores * gran, stores, VSW_BUS_MEMORY);
        ps += cost;
        n += stores;
    }
    *units = n;
    return ps;
}

uint64_t vsw_path_charge(struct vsw_path *path, struct vsw_trace *t, uint32_t dir, uint32_t mask,
                         uint64_t start_ps, const struct vsw_trace_record *proto, uint32_t *units,
                         struct vsw_tally *tally)
{
    return path->kind == VSW_PATH_STORE ? store_cost(path, t, dir, mask, start_ps, proto, units, tally)
                                        : memory_cost(path, t, dir, mask, start_ps, proto, units, true);
}

int vsw_path_price(struct vsw_path *path, uint32_t mask, uint32_t *units, uint64_t *ps)
{
    if (!path || !units || !ps)
        return -EINVAL;
    if (mask & ~vsw_layout_all(layout(path)))
        return -EINVAL;
    struct vsw_tally tally = {0, 0, 0};
    struct vsw_trace_record proto = {0};
    *ps = path->kind == VSW_PATH_STORE ? store_cost(path, NULL, VSW_DIR_SAVE, mask, 0, &proto, units, &tally)
                                       : memory_cost(path, NULL, VSW_DIR_SAVE, mask, 0, &proto, units, false);
    return 0;
}

uint64_t vsw_path_baseline_ps(struct vsw_path *path, uint32_t mask)
{
    const struct vsw_layout_def *L = layout(path);
    uint32_t version = __atomic_load_n(&path->baseline->version, __ATOMIC_ACQUIRE);
    if (version != path->baseline_version) {    /* the bus was reconfigured: re-price each group */
        for (uint32_t g = 0; g < L->ngroups; g++)
            path->baseline_ps[g] = vsw_bus_expect(path->baseline, pcpu_stores(&L->groups[g]), store_granule(&L->groups[g]));
        path->baseline_version = version;
    }
    uint64_t ps = 0;
    for (; mask; mask &= mask - 1)
        ps += path->baseline_ps[__builtin_ctz(mask)];
    return ps;
}
