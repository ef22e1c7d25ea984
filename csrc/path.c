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
 * model charges (cost.c), and in that only the mover has thresholds to keep.
 */
#include "copy_sum.h"
#include "transfer.h"
#include <stdlib.h>
#include <string.h>

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
    x->bytes = mask_bytes(L, mask);
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
    x->bytes = mask_bytes(L, mask);
    return 0;
}
