/*
 * path.c - the two ways a context moves between the register file and a store.
 *
 * Store path (the mover): each run of adjacent groups in a transfer is one
 * descriptor chain over the storage bus, cut into bursts of at most max_burst
 * bytes, so S contiguous bytes take ceil(S / max_burst) bursts.  The store
 * routes each group to its bank itself, so banks never split a burst.
 * Memory path (the prior art): the PCPU stores every register over the memory
 * bus - 8 bytes per scalar store, a 64-byte line per vector store - covering a
 * group's registers (`used` bytes), not the padding of its span.
 * Both paths copy the same bytes with the same checks; they differ in what the
 * model charges, and in that only the mover has thresholds to keep.
 */
#include "copy_sum.h"
#include <stdlib.h>
#include <string.h>

#define SCALAR_STORE 8
#define VECTOR_LINE 64

static uint32_t ceil_div(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

static const struct vsw_layout_def *layout(const struct vsw_path *path) { return path->store->L; }

/* Iterates over the runs of adjacent set bits in mask: groups first..last. */
#define FOR_EACH_RUN(mask, first, last)                                                              \
    for (uint32_t m_ = (mask), first, last;                                                           \
         m_ && ((first = (uint32_t)__builtin_ctz(m_)),                                                \
               (last = first + (uint32_t)__builtin_ctzll(~((uint64_t)m_ >> first)) - 1), 1);        \
         m_ &= (last >= 31) ? 0 : ~0u << (last + 1))

static uint64_t run_bytes(const struct vsw_layout_def *L, uint32_t first, uint32_t last)
{
    return (uint64_t)L->groups[last].offset + L->groups[last].size - L->groups[first].offset;
}

static uint32_t store_granule(const struct vsw_group_info *g)
{
    return g->flags & VSW_GROUP_VECTOR ? VECTOR_LINE : SCALAR_STORE;
}

/* Register stores (or vector lines) the PCPU needs for a group. */
static uint32_t pcpu_stores(const struct vsw_group_info *g)
{
    _Static_assert(SCALAR_STORE == 8 && VECTOR_LINE == 64, "shifts below");
    return g->flags & VSW_GROUP_VECTOR ? (g->used + 63) >> 6 : (g->used + 7) >> 3;
}

int vsw_path_units(const struct vsw_path *path, uint32_t mask)
{
    if (!path)
        return -EINVAL;
    const struct vsw_layout_def *L = layout(path);
    if (mask & ~vsw_layout_all(L))
        return -EINVAL;
    uint32_t units = 0;
    if (path->kind == VSW_PATH_STORE) {
        FOR_EACH_RUN(mask, first, last)
            units += ceil_div(run_bytes(L, first, last), path->mp.max_burst);
    } else {
        for (uint32_t g = 0; g < L->ngroups; g++)
            if (mask & (1u << g))
                units += pcpu_stores(&L->groups[g]);
    }
    return (int)units;
}

/* The most bursts any set of groups can need: runs are separated by at least one
 * unmoved group, so best(i) = max(best(i+1), max_j units(i..j) + best(j+2)). */
static uint32_t worst_units(const struct vsw_layout_def *L, uint32_t max_burst)
{
    uint32_t best[VSW_MAX_GROUPS + 2] = {0};
    for (int i = (int)L->ngroups - 1; i >= 0; i--) {
        uint32_t b = best[i + 1];
        for (uint32_t j = (uint32_t)i; j < L->ngroups; j++) {
            uint32_t u = ceil_div(run_bytes(L, (uint32_t)i, j), max_burst) + best[j + 2];
            if (u > b)
                b = u;
        }
        best[i] = b;
    }
    return best[0];
}

static int compute_limits(const struct vsw_path *path, const struct vsw_mover_params *mp,
                          struct vsw_path_limits *lim)
{
    const struct vsw_layout_def *L = layout(path);
    if (path->kind == VSW_PATH_MEMORY) {
        lim->full_units = (uint32_t)vsw_path_units(path, vsw_layout_all(L));
        lim->worst_save_units = lim->worst_load_units = lim->full_units;
        return 0;
    }
    if (!mp || mp->max_burst == 0 || mp->max_burst % 8)
        return -EINVAL;
    lim->full_units = ceil_div(L->size, mp->max_burst);
    lim->worst_save_units = worst_units(L, mp->max_burst);
    lim->worst_load_units = lim->full_units; /* a load moves every group */
    if (lim->worst_save_units >= mp->write_threshold || lim->worst_load_units >= mp->read_threshold)
        return -E2BIG;
    return 0;
}

int vsw_path_create(uint32_t kind, struct vsw_store *store, struct vsw_bus *bus,
                    const struct vsw_mover_params *params, struct vsw_path **out)
{
    if (!store || !bus || !out || kind > VSW_PATH_MEMORY)
        return -EINVAL;
    if ((kind == VSW_PATH_STORE) != (bus->p.kind == VSW_BUS_STORAGE))
        return -EINVAL;
    struct vsw_path tmp = {.kind = kind, .store = store, .bus = bus};
    if (params)
        tmp.mp = *params;
    int r = compute_limits(&tmp, params, &tmp.lim);
    if (r < 0)
        return r;
    struct vsw_path *path = malloc(sizeof(*path));
    if (!path)
        return -ENOMEM;
    *path = tmp;
    *out = path;
    return 0;
}

void vsw_path_destroy(struct vsw_path *path) { free(path); }

int vsw_path_set_baseline(struct vsw_path *path, struct vsw_bus *membus)
{
    if (!path || (membus && membus->p.kind != VSW_BUS_MEMORY))
        return -EINVAL;
    path->baseline = membus;
    path->baseline_version = membus ? membus->version - 1 : 0;
    return 0;
}

int vsw_path_configure(struct vsw_path *path, const struct vsw_mover_params *params)
{
    if (!path || path->kind != VSW_PATH_STORE)
        return -EINVAL;
    struct vsw_path_limits lim;
    int r = compute_limits(path, params, &lim);
    if (r < 0)
        return r;
    path->mp = *params;
    path->lim = lim;
    path->version++;
    return 0;
}

int vsw_path_limits(const struct vsw_path *path, struct vsw_path_limits *out)
{
    if (!path || !out)
        return -EINVAL;
    *out = path->lim;
    return 0;
}

int vsw_path_inject(struct vsw_path *path, uint32_t kind, uint32_t unit)
{
    if (!path || kind > VSW_FAULT_LOAD)
        return -EINVAL;
    path->fault_kind = kind;
    path->fault_unit = unit;
    return 0;
}

/* Byte position, in transfer order, where unit k of a transfer of mask begins. */
static uint64_t unit_start(const struct vsw_path *path, uint32_t mask, uint32_t k)
{
    const struct vsw_layout_def *L = layout(path);
    uint64_t stream = 0;
    if (path->kind == VSW_PATH_STORE) {
        FOR_EACH_RUN(mask, first, last) {
            uint64_t bytes = run_bytes(L, first, last);
            uint32_t n = ceil_div(bytes, path->mp.max_burst);
            if (k < n)
                return stream + (uint64_t)k * path->mp.max_burst;
            k -= n;
            stream += bytes;
        }
    } else {
        for (uint32_t g = 0; g < L->ngroups; g++) {
            if (!(mask & (1u << g)))
                continue;
            uint32_t n = pcpu_stores(&L->groups[g]);
            if (k < n)
                return stream + (uint64_t)k * store_granule(&L->groups[g]);
            k -= n;
            stream += L->groups[g].size;
        }
    }
    return UINT64_MAX;
}

/* Where an armed fault for this direction stops the transfer; disarms it. */
static uint64_t take_fault(struct vsw_path *path, uint32_t kind, uint32_t mask)
{
    if (path->fault_kind != kind)
        return UINT64_MAX;
    path->fault_kind = VSW_FAULT_NONE;
    return unit_start(path, mask, path->fault_unit);
}

/* An injected fault: the transfer moves its groups in order up to byte `fail`
 * of the stream, then stops - as the hardware would leave it. */
static int fail_partway(const struct vsw_layout_def *L, uint8_t *regs, struct vsw_slot *slot, uint32_t mask,
                        uint64_t fail, bool save, struct vsw_transfer *x)
{
    uint64_t stream = 0;
    for (uint32_t g = 0; g < L->ngroups; g++) {
        if (!(mask & (1u << g)))
            continue;
        const struct vsw_group_info *gi = &L->groups[g];
        uint8_t *bank = slot->bank[((slot->bank_mask >> g) & 1) ^ save] + gi->offset;
        uint64_t n = fail - stream < gi->size ? fail - stream : gi->size;
        memcpy(save ? bank : regs + gi->offset, save ? regs + gi->offset : bank, n);
        x->failed_group = g;
        stream += n;
        if (stream == fail)
            break;
    }
    return -EIO;
}

/* Groups in mask whose bank (which = 0) or shadow bank (which = 1) is b. */
static uint32_t in_bank(const struct vsw_slot *slot, uint32_t mask, uint32_t b, uint32_t which)
{
    return mask & ((b ^ which) ? slot->bank_mask : ~slot->bank_mask);
}

VSW_VECTOR_CLONES
int vsw_path_save(struct vsw_path *path, uint8_t *regs, struct vsw_slot *slot, uint32_t mask,
                  struct vsw_transfer *x)
{
    const struct vsw_layout_def *L = layout(path);
    uint64_t fail = take_fault(path, VSW_FAULT_SAVE, mask);
    if (fail != UINT64_MAX)
        return fail_partway(L, regs, slot, mask, fail, true, x);
    /* each group goes to its shadow bank; adjacent groups bound for one bank move as one run */
    for (uint32_t b = 0; b < 2; b++)
        FOR_EACH_RUN(in_bank(slot, mask, b, 1), first, last)
            vsw_copy_run(slot->bank[b], regs, L->groups, first, last, slot->sum[b]);
    x->bytes = 0;
    FOR_EACH_RUN(mask, first, last)
        x->bytes += run_bytes(L, first, last);
    return 0;
}

VSW_VECTOR_CLONES
int vsw_path_load(struct vsw_path *path, uint8_t *regs, struct vsw_slot *slot, struct vsw_transfer *x)
{
    const struct vsw_layout_def *L = layout(path);
    uint32_t mask = slot->valid_mask;
    uint64_t fail = take_fault(path, VSW_FAULT_LOAD, mask);
    if (fail != UINT64_MAX)
        return fail_partway(L, regs, slot, mask, fail, false, x);
    for (uint32_t b = 0; b < 2; b++) {
        FOR_EACH_RUN(in_bank(slot, mask, b, 0), first, last) {
            struct vsw_fold got = vsw_copy_run(regs, slot->bank[b], L->groups, first, last, NULL);
            struct vsw_fold want = vsw_fold_zero();
            for (uint32_t g = first; g <= last; g++) {
                struct vsw_fold c = vsw_fold_load(&slot->sum[b][g]);
                want.lo += c.lo;
                want.hi += c.hi;
            }
            if (!vsw_fold_equal(got, want)) {
                x->failed_group = L->ngroups - 1;   /* undo the whole load */
                return -EBADMSG;
            }
        }
    }
    x->bytes = 0;
    FOR_EACH_RUN(mask, first, last)
        x->bytes += run_bytes(L, first, last);
    return 0;
}

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

/* Charges a completed transfer to the path's bus and traces it from start_ps.
 * The storage bus never waits, so its cost is plain arithmetic, tallied for the
 * caller to count once per switch; the memory bus draws its waits under its lock. */
static uint64_t transfer_cost(struct vsw_path *path, struct vsw_trace *t, uint32_t dir, uint32_t mask,
                              uint64_t start_ps, const struct vsw_trace_record *proto, uint32_t *units,
                              struct vsw_tally *tally, bool count);

uint64_t vsw_path_charge(struct vsw_path *path, struct vsw_trace *t, uint32_t dir, uint32_t mask,
                         uint64_t start_ps, const struct vsw_trace_record *proto, uint32_t *units,
                         struct vsw_tally *tally)
{
    return transfer_cost(path, t, dir, mask, start_ps, proto, units, tally, true);
}

int vsw_path_price(struct vsw_path *path, uint32_t mask, uint32_t *units, uint64_t *ps)
{
    if (!path || !units || !ps)
        return -EINVAL;
    if (mask & ~vsw_layout_all(layout(path)))
        return -EINVAL;
    struct vsw_tally tally = {0, 0, 0};
    struct vsw_trace_record proto = {0};
    *ps = transfer_cost(path, NULL, VSW_DIR_SAVE, mask, 0, &proto, units, &tally, false);
    return 0;
}

static uint64_t transfer_cost(struct vsw_path *path, struct vsw_trace *t, uint32_t dir, uint32_t mask,
                              uint64_t start_ps, const struct vsw_trace_record *proto, uint32_t *units,
                              struct vsw_tally *tally, bool count)
{
    const struct vsw_layout_def *L = layout(path);
    uint32_t n = 0;
    uint64_t ps = 0;
    if (path->kind == VSW_PATH_STORE) {
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
        ps = vsw_bus_cycles_to_ps(bus, cycles);
    } else {
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
    }
    *units = n;
    return ps;
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
