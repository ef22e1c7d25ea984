/*
 * switch.c - one switch, all or nothing.
 *
 * Order: save the outgoing machine's dirty groups into the shadow banks of its
 * slot (nothing committed), load the incoming machine (checking every group),
 * and only then commit the save with one flip and hand the PCPU over.  A fault
 * in the save leaves everything untouched; a fault or a corrupt bank in the
 * load is undone by restoring the register file from the outgoing slot, which
 * now holds exactly the outgoing state.  Costs are charged after success.
 */
#include "cache.h"
#include <string.h>

/* Undoes a failed load: groups up to `upto` come back from the outgoing slot
 * (its shadow banks for the groups just saved), or back to zero when idle. */
static void restore(struct vsw_pcpu *p, const struct vsw_slot *from, uint32_t saved, uint32_t upto)
{
    const struct vsw_layout_def *L = p->L;
    for (uint32_t g = 0; g <= upto && g < L->ngroups; g++) {
        const struct vsw_group_info *gi = &L->groups[g];
        if (from)
            memcpy(p->regs + gi->offset, from->bank[((from->bank_mask ^ saved) >> g) & 1] + gi->offset, gi->size);
        else
            memset(p->regs + gi->offset, 0, gi->size);
    }
}

static void trace_mark(struct vsw_trace *t, const struct vsw_trace_record *proto, uint32_t kind, uint32_t dir,
                       uint64_t start, uint64_t end, uint32_t bytes)
{
    if (!t)
        return;
    struct vsw_trace_record r = *proto;
    r.kind = (uint8_t)kind;
    r.dir = (uint8_t)dir;
    r.start_ps = start;
    r.end_ps = end;
    r.bytes = bytes;
    r.count = 1;
    vsw_trace_put(t, &r);
}

/* One direction's cost: charged to the bus and traced, or - on the store path,
 * untraced - taken from the PCPU's memo when the same groups moved last time.
 * Returns the memo or `out`, so nothing is copied on the memoised path (a struct
 * copy compiles to a `rep movs`, which costs more than the rest of it). */
static const struct vsw_charge_memo *charge(struct vsw_pcpu *p, struct vsw_path *path, uint32_t dir,
                                            uint32_t mask, uint64_t start_ps,
                                            const struct vsw_trace_record *proto, struct vsw_tally *tally,
                                            struct vsw_charge_memo *out)
{
    struct vsw_charge_memo *m = &p->memo[dir];
    uint32_t bver = path->baseline ? __atomic_load_n(&path->baseline->version, __ATOMIC_RELAXED) : 0;
    /* memoised where the cost depends on nothing but the groups: not traced, not arbitrated */
    bool memo = path->kind == VSW_PATH_STORE && !p->trace && path->bus->p.masters <= 1;
    if (memo && m->path == path && m->mask == mask && m->path_version == path->version &&
        m->baseline_version == bver) {
        tally->transactions += m->units;
        tally->bytes += m->bytes;
        tally->cycles += m->cycles;
        return m;
    }
    struct vsw_tally mine = {0, 0, 0};
    if (memo)
        out = m;
    out->path = path;
    out->path_version = path->version;
    out->baseline_version = bver;
    out->mask = mask;
    out->units = 0;
    out->ps = vsw_path_charge(path, p->trace, dir, mask, start_ps, proto, &out->units, &mine);
    out->bytes = mine.bytes;
    out->cycles = mine.cycles;
    out->baseline_ps = path->kind == VSW_PATH_STORE && path->baseline ? vsw_path_baseline_ps(path, mask) : 0;
    tally->transactions += mine.transactions;
    tally->bytes += mine.bytes;
    tally->cycles += mine.cycles;
    return out;
}

/* One switch in flight: what each step finds and hands to the next. */
struct switch_op {
    struct vsw_pcpu *p;
    struct vsw_path *path;
    uint64_t from_owner, to_owner;
    uint32_t to_slot, save_mask;
    struct vsw_ctx *to_ctx;     /* a cached handle: `to` may have to be fetched first */
    struct vsw_slot *from, *to;
    bool claimed;               /* `to` is ours: released again if the switch fails */
    struct vsw_transfer xs, xl;
    struct vsw_fill fill;
};

/* 1. claim: `from` is what runs here, `to` is its owner's and free - then
 * `to` is ours (LOADING) until commit or failure; nothing else changes. */
static int claim(struct switch_op *op)
{
    struct vsw_pcpu *p = op->p;
    int r;
    if (op->from_owner != p->owner)
        return -ESRCH;                  /* `from` is not what runs here */
    if (!op->from_owner && !op->to_owner)
        return -EINVAL;
    if (op->from_owner) {
        if (p->resident_store != op->path->store)
            return -EXDEV;              /* its context lives behind the other path */
        r = vsw_store_slot(op->path->store, p->slot, op->from_owner, &op->from);
        if (r < 0)
            return r;
    }
    if (op->to_ctx) {
        if (op->to_owner == op->from_owner)
            return -EALREADY;
        op->fill.result = VSW_CACHE_HIT;
        if (!vsw_cache_try_hit(op->p, op->to_ctx, &op->to, &op->to_slot)) {
            r = vsw_cache_claim(op->p, op->to_ctx, &op->to, &op->to_slot, &op->fill);
            if (r < 0)
                return r;
        }
        op->claimed = true;
    } else if (op->to_owner) {
        r = vsw_store_slot(op->path->store, op->to_slot, op->to_owner, &op->to);
        if (r < 0)
            return r;
        if (op->to == op->from)
            return -EALREADY;
        r = vsw_store_claim(op->path->store, op->to);
        if (r < 0)
            return r;
        op->claimed = true;
    }
    return 0;
}

/* 2. transfer and verify: the dirty groups into `from`'s shadow banks (not yet
 * committed), then `to` into the register file, every run checked on the way;
 * a failed load puts the register file back from `from`. */
static int transfer(struct switch_op *op)
{
    struct vsw_pcpu *p = op->p;
    int r;
    op->save_mask = op->from ? p->dirty & op->from->valid_mask : 0;
    if (op->save_mask) {
        r = vsw_path_save(op->path, p->regs, op->from, op->save_mask, &op->xs);
        if (r < 0)
            return r;
    }
    if (op->to) {
        r = vsw_path_load(op->path, p->regs, op->to, &op->xl);
        if (r < 0) {
            restore(p, op->from, op->save_mask, op->xl.failed_group);
            return r;
        }
    }
    return 0;
}

/* 3. commit, the point of no return: flip `from`'s banks, hand the PCPU over. */
static void commit(struct switch_op *op)
{
    struct vsw_pcpu *p = op->p;
    if (op->from) {
        vsw_slot_commit(op->from, op->save_mask);
        vsw_store_release(op->path->store, op->from);
    }
    if (op->to) {
        __atomic_store_n(&op->to->resident, VSW_SLOT_LOADED, __ATOMIC_RELEASE);    /* running now */
        p->owner = op->to_owner;
        p->slot = op->to_slot;
        p->resident_store = op->path->store;
    } else {
        memset(p->regs, 0, p->L->size);
        p->owner = 0;
        p->resident_store = NULL;
    }
    p->dirty = 0;
}

/* The stats of a switch that cost `save`, `cache_ps` and `load`: every field
 * stored once, none zeroed first (a zeroing initialiser compiles to `rep stos`). */
static void fill_stats(struct vsw_switch_stats *st, const struct switch_op *op, const struct vsw_charge_memo *save,
                       uint64_t cache_ps, const struct vsw_charge_memo *load, uint64_t exit_entry)
{
    const struct vsw_path *path = op->path;
    uint64_t data_ps = save->ps + cache_ps + load->ps, modeled_ps = data_ps + exit_entry;
    st->path = path->kind;
    st->save_units = save->units;
    st->load_units = load->units;
    st->save_mask = op->save_mask;
    st->bytes_saved = op->xs.bytes;
    st->bytes_loaded = op->xl.bytes;
    st->data_ps = data_ps;
    st->exit_entry_ps = exit_entry;
    st->modeled_ps = modeled_ps;
    st->baseline_ps = path->kind == VSW_PATH_MEMORY ? modeled_ps
                      : path->baseline            ? exit_entry + save->baseline_ps + load->baseline_ps
                                                  : 0;
    st->generation = op->from ? op->from->generation : 0;
    st->cache = op->fill.result;
    st->reserved = 0;
    st->bytes_fetched = op->fill.fetch_bytes;
    st->bytes_written_back = op->fill.wb_bytes;
    st->cache_ps = cache_ps;
}

/* 4. account: what it cost - charged to the bus, traced, in the stats and the
 * PCPU's clock. */
static void account(struct switch_op *op, struct vsw_switch_stats *st)
{
    static const struct vsw_charge_memo none = {0};
    struct vsw_pcpu *p = op->p;
    struct vsw_path *path = op->path;
    uint64_t t0 = p->now_ps;
    struct vsw_trace_record proto = {.seq = p->switches, .from_owner = op->from_owner, .to_owner = op->to_owner};
    uint64_t half = p->half_exit_entry_ps, cache_ps = 0;
    struct vsw_tally tally = {0, 0, 0};
    struct vsw_charge_memo scratch[2];
    const struct vsw_charge_memo *save = &none, *load = &none;
    trace_mark(p->trace, &proto, VSW_TRACE_EXIT_ENTRY, VSW_DIR_SAVE, t0, t0 + half, 0);
    if (op->save_mask)          /* a clean machine's save moves nothing and costs nothing */
        save = charge(p, path, VSW_DIR_SAVE, op->save_mask, t0 + half, &proto, &tally, &scratch[0]);
    if (op->fill.wb_mask | op->fill.fetch_mask)  /* a miss: `to` was made resident between the save and the load */
        cache_ps = vsw_cache_charge(op->to_ctx->cache, &op->fill, t0 + half + save->ps, p->trace, &proto, &tally);
    if (op->to)
        load = charge(p, path, VSW_DIR_LOAD, op->to->valid_mask, t0 + half + save->ps + cache_ps, &proto, &tally,
                      &scratch[1]);
    if (tally.transactions)
        vsw_bus_count(path->bus, p->bus_shard, tally.transactions, tally.bytes, tally.cycles);
    fill_stats(st, op, save, cache_ps, load, 2 * half);
    uint64_t t1 = t0 + st->modeled_ps;
    trace_mark(p->trace, &proto, VSW_TRACE_EXIT_ENTRY, VSW_DIR_LOAD, t1 - half, t1, 0);
    trace_mark(p->trace, &proto, VSW_TRACE_SWITCH, VSW_DIR_SAVE, t0, t1, (uint32_t)(op->xs.bytes + op->xl.bytes));
    p->now_ps = t1;
    p->switches++;
}

/* The switch, on an entered PCPU: claim, transfer (verified), commit, account. */
static inline int do_switch(struct vsw_pcpu *p, struct vsw_path *path, uint64_t from_owner, uint32_t to_slot,
                            uint64_t to_owner, struct vsw_ctx *to_ctx, struct vsw_switch_stats *st)
{
    struct switch_op op;       /* field by field: a zeroing initialiser compiles to `rep stos` */
    op.p = p;
    op.path = path;
    op.from_owner = from_owner;
    op.to_owner = to_owner;
    op.to_slot = to_slot;
    op.save_mask = 0;
    op.to_ctx = to_ctx;
    op.from = op.to = NULL;
    op.claimed = false;
    op.xs.bytes = op.xl.bytes = 0;
    op.fill.result = 0;
    op.fill.wb_mask = op.fill.fetch_mask = 0;
    op.fill.wb_bytes = op.fill.fetch_bytes = 0;
    int r = claim(&op);
    if (r == 0)
        r = transfer(&op);
    if (r < 0) {
        if (op.claimed)
            vsw_store_release(path->store, op.to);
        return r;
    }
    commit(&op);
    account(&op, st);
    return 0;
}

/* By owners and slot numbers, for the C benchmark loop (vsw_internal.h). */
int vsw_switch_slots(struct vsw_pcpu *p, struct vsw_path *path, uint64_t from_owner, uint32_t to_slot,
                     uint64_t to_owner, struct vsw_switch_stats *st)
{
    if (!p || !path || !st)
        return -EINVAL;
    if (path->store->L != p->L)
        return -EXDEV;
    int r = vsw_pcpu_enter(p);
    if (r < 0)
        return r;
    r = do_switch(p, path, from_owner, to_slot, to_owner, NULL, st);
    vsw_pcpu_leave(p);
    return r;
}

/* The switch, the one way the API (through pyvswitch._fastpath), the hw owners,
 * migrations, schedules and the KVM loop switch: enter the PCPU's gate, and only
 * then look at the handles - one of another epoch (a migration moved everything
 * since) is refused before its path is touched - then the switch. */
int vsw_switch(struct vsw_pcpu *p, const struct vsw_ctx *frm, const struct vsw_ctx *to, struct vsw_switch_stats *st)
{
    if (!p || !st || (!frm && !to))
        return -EINVAL;
    int r = vsw_pcpu_enter(p);
    if (r < 0)
        return r;
    uint64_t epoch = p->epoch;
    struct vsw_path *path = to ? to->path : frm->path;
    if ((frm && __atomic_load_n(&frm->epoch, __ATOMIC_ACQUIRE) != epoch) ||
        (to && __atomic_load_n(&to->epoch, __ATOMIC_ACQUIRE) != epoch))
        r = -ESTALE;
    else if ((frm && to && frm->path != to->path) || path->store->L != p->L)
        r = -EXDEV;
    else
        r = do_switch(p, path, frm ? frm->owner : 0, to ? to->slot : 0, to ? to->owner : 0,
                      to && to->cache ? (struct vsw_ctx *)to : NULL, st);
    vsw_pcpu_leave(p);
    return r;
}
