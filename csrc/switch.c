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
#include "vsw_internal.h"
#include <stdlib.h>
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
 * untraced - taken from the PCPU's memo when the same groups moved last time. */
static struct vsw_charge_memo charge(struct vsw_pcpu *p, struct vsw_path *path, uint32_t dir, uint32_t mask,
                                     uint64_t start_ps, const struct vsw_trace_record *proto,
                                     struct vsw_tally *tally)
{
    struct vsw_charge_memo *m = &p->memo[dir];
    uint32_t bver = path->baseline ? __atomic_load_n(&path->baseline->version, __ATOMIC_RELAXED) : 0;
    bool memo = path->kind == VSW_PATH_STORE && !p->trace;
    if (memo && m->path == path && m->mask == mask && m->path_version == path->version &&
        m->baseline_version == bver) {
        tally->transactions += m->units;
        tally->bytes += m->bytes;
        tally->cycles += m->cycles;
        return *m;
    }
    struct vsw_tally mine = {0, 0, 0};
    struct vsw_charge_memo out = {path, path->version, bver, mask, 0, 0, 0, 0, 0};
    out.ps = vsw_path_charge(path, p->trace, dir, mask, start_ps, proto, &out.units, &mine);
    out.bytes = mine.bytes;
    out.cycles = mine.cycles;
    if (path->kind == VSW_PATH_STORE && path->baseline)
        out.baseline_ps = vsw_path_baseline_ps(path, mask);
    tally->transactions += mine.transactions;
    tally->bytes += mine.bytes;
    tally->cycles += mine.cycles;
    if (memo)
        *m = out;
    return out;
}

static int do_switch(struct vsw_pcpu *p, struct vsw_path *path, uint64_t from_owner, uint32_t to_slot, uint64_t to_owner, struct vsw_switch_stats *st)
{
    const struct vsw_layout_def *L = p->L;
    struct vsw_slot *from = NULL, *to = NULL;
    int r;
    if (from_owner != p->owner)
        return -ESRCH;                  /* `from` is not what runs here */
    if (!from_owner && !to_owner)
        return -EINVAL;
    if (from_owner) {
        if (p->resident_store != path->store)
            return -EXDEV;              /* its context lives behind the other path */
        r = vsw_store_slot(path->store, p->slot, from_owner, &from);
        if (r < 0)
            return r;
    }
    if (to_owner) {
        r = vsw_store_slot(path->store, to_slot, to_owner, &to);
        if (r < 0)
            return r;
        if (to == from)
            return -EALREADY;
        r = vsw_store_claim(path->store, to);
        if (r < 0)
            return r;
    }

    uint32_t save_mask = from ? p->dirty & from->valid_mask : 0;
    struct vsw_transfer xs = {0}, xl = {0};
    if (from) {
        r = vsw_path_save(path, p->regs, from, save_mask, &xs);
        if (r < 0)
            goto fail;
    }
    if (to) {
        r = vsw_path_load(path, p->regs, to, &xl);
        if (r < 0) {
            restore(p, from, save_mask, xl.failed_group);
            goto fail;
        }
    }

    /* the point of no return: commit the save, hand the PCPU over */
    uint64_t t0 = p->now_ps;
    struct vsw_trace_record proto = {.seq = p->switches, .from_owner = from_owner, .to_owner = to_owner};
    uint64_t half = p->half_exit_entry_ps, exit_entry = 2 * half;
    struct vsw_tally tally = {0, 0, 0};
    struct vsw_charge_memo save = {0}, load = {0};
    trace_mark(p->trace, &proto, VSW_TRACE_EXIT_ENTRY, VSW_DIR_SAVE, t0, t0 + half, 0);
    *st = (struct vsw_switch_stats){.path = path->kind, .save_mask = save_mask};
    if (from) {
        vsw_slot_commit(from, save_mask);
        vsw_store_release(path->store, from);
        save = charge(p, path, VSW_DIR_SAVE, save_mask, t0 + half, &proto, &tally);
        st->generation = from->generation;
    }
    if (to) {
        load = charge(p, path, VSW_DIR_LOAD, to->valid_mask, t0 + half + save.ps, &proto, &tally);
        p->owner = to_owner;
        p->slot = to_slot;
        p->resident_store = path->store;
    } else {
        memset(p->regs, 0, L->size);
        p->owner = 0;
        p->resident_store = NULL;
    }
    if (tally.transactions)
        vsw_bus_count(path->bus, p->bus_shard, tally.transactions, tally.bytes, tally.cycles);
    p->dirty = 0;
    st->save_units = save.units;
    st->load_units = load.units;
    st->bytes_saved = xs.bytes;
    st->bytes_loaded = xl.bytes;
    st->data_ps = save.ps + load.ps;
    st->exit_entry_ps = exit_entry;
    st->modeled_ps = st->data_ps + exit_entry;
    if (path->kind == VSW_PATH_MEMORY)
        st->baseline_ps = st->modeled_ps;
    else if (path->baseline)
        st->baseline_ps = exit_entry + save.baseline_ps + load.baseline_ps;
    uint64_t t1 = t0 + st->modeled_ps;
    trace_mark(p->trace, &proto, VSW_TRACE_EXIT_ENTRY, VSW_DIR_LOAD, t1 - half, t1, 0);
    trace_mark(p->trace, &proto, VSW_TRACE_SWITCH, VSW_DIR_SAVE, t0, t1, (uint32_t)(xs.bytes + xl.bytes));
    p->now_ps = t1;
    p->switches++;
    return 0;

fail:
    if (to)
        vsw_store_release(path->store, to);
    return r;
}

int vsw_switch(struct vsw_pcpu *p, struct vsw_path *path, uint64_t from_owner, uint32_t to_slot, uint64_t to_owner,
               struct vsw_switch_stats *st)
{
    if (!p || !path || !st)
        return -EINVAL;
    if (path->store->L != p->L)
        return -EXDEV;
    int r = vsw_pcpu_enter(p);
    if (r < 0)
        return r;
    r = do_switch(p, path, from_owner, to_slot, to_owner, st);
    vsw_pcpu_leave(p);
    return r;
}

struct vsw_ctx {
    struct vsw_path *path;
    uint32_t slot;
    uint64_t owner;
    uint64_t epoch;
};

#define VSW_EPOCH_RETIRED UINT64_MAX

int vsw_ctx_create(struct vsw_path *path, uint32_t slot, uint64_t owner, uint64_t epoch, struct vsw_ctx **out)
{
    struct vsw_slot *sl;
    if (!path || !out || epoch == VSW_EPOCH_RETIRED)
        return -EINVAL;
    int r = vsw_store_slot(path->store, slot, owner, &sl);
    if (r < 0)
        return r;
    struct vsw_ctx *c = malloc(sizeof(*c));
    if (!c)
        return -ENOMEM;
    *c = (struct vsw_ctx){path, slot, owner, epoch};
    *out = c;
    return 0;
}

void vsw_ctx_destroy(struct vsw_ctx *c) { free(c); }

int vsw_ctx_retire(struct vsw_ctx *c, struct vsw_pcpu *const *pcpus, uint32_t n)
{
    if (!c || (n && !pcpus))
        return -EINVAL;
    __atomic_store_n(&c->epoch, VSW_EPOCH_RETIRED, __ATOMIC_SEQ_CST);
    /* a switch that read the old epoch is inside its PCPU: wait for it to leave */
    for (uint32_t i = 0; i < n; i++) {
        if (!pcpus[i])
            continue;
        while (__atomic_exchange_n(&pcpus[i]->busy, 1, __ATOMIC_ACQUIRE))
            vsw_cpu_relax();
        vsw_pcpu_leave(pcpus[i]);
    }
    return 0;
}

/* The PCPU is entered: only now may the handles' paths be touched. */
static int switch_entered(struct vsw_pcpu *p, const struct vsw_ctx *frm, const struct vsw_ctx *to,
                          struct vsw_switch_stats *st)
{
    uint64_t epoch = p->epoch;
    if ((frm && __atomic_load_n(&frm->epoch, __ATOMIC_ACQUIRE) != epoch) ||
        (to && __atomic_load_n(&to->epoch, __ATOMIC_ACQUIRE) != epoch))
        return -ESTALE;
    struct vsw_path *path = to ? to->path : frm->path;
    if (frm && to && frm->path != to->path)
        return -EXDEV;
    if (path->store->L != p->L)
        return -EXDEV;
    return do_switch(p, path, frm ? frm->owner : 0, to ? to->slot : 0, to ? to->owner : 0, st);
}

int vsw_switch_ctx(struct vsw_pcpu *p, const struct vsw_ctx *frm, const struct vsw_ctx *to,
                   struct vsw_switch_stats *st)
{
    if (!p || !st || (!frm && !to))
        return -EINVAL;
    int r = vsw_pcpu_enter(p);
    if (r < 0)
        return r;
    r = switch_entered(p, frm, to, st);
    vsw_pcpu_leave(p);
    return r;
}

int vsw_switch_desc(struct vsw_switch_desc *d, const struct vsw_ctx *frm, const struct vsw_ctx *to)
{
    return d ? vsw_switch_ctx(d->pcpu, frm, to, &d->stats) : -EINVAL;
}
