/*
 * cache.c - the context store as a cache of contexts over their homes in MEM.
 *
 * A switch to a machine whose context is not in the store (a miss) reads it
 * from home, checked, into the cache's scratch register file; the policy picks
 * a victim among the contexts in the store that are neither pinned nor loaded;
 * the victim's changed groups are written back to its home (shadow banks, one
 * commit: a fault leaves home as it was and the switch is refused); then the
 * victim's slot is refilled, into its shadow banks, and committed for the
 * fetched context with one flip.  A fault in the refill leaves the victim in
 * its slot as it was (and clean: home has it too), and `to` at home.
 *
 * A hit takes no lock: it holds the slot (SAVED -> HELD), checks the slot is
 * still the machine's, claims it for the switch (LOADING; LOADED once the
 * switch commits) and notes the use and the hit in the machine's own handle
 * (its place in the order of loads for LRU, model time for LRU_TIME, the
 * reference bit for CLOCK, its count of hits).  Its one write another PCPU
 * also makes is the atomic add that takes that place from the cache's count
 * of loads - so PCPUs switching at once on one store do not serialise.
 * Everything else runs under the cache's lock.  A slot is taken from its
 * machine only while held by the eviction (never while loaded), so a switch
 * that claimed one keeps it; a slot is freed only with its machine, whose
 * handle was retired first (no switch carrying it is in flight), so a hit
 * never reaches freed memory.  The only allocations are a home slot backed
 * the first time a machine is evicted, and a store slot backed when a miss
 * finds one free.
 */
#include "cache.h"
#include "transfer.h"
#include <sched.h>
#include <stdlib.h>
#include <string.h>


int vsw_cache_create(struct vsw_path *path, struct vsw_store *home, struct vsw_bus *membus,
                     const struct vsw_cache_params *params, struct vsw_cache **out)
{
    if (!path || !home || !membus || !params || !out || path->kind != VSW_PATH_STORE ||
        params->policy > VSW_POLICY_LRU_TIME || params->fetch_via > VSW_FETCH_MOVER)
        return -EINVAL;
    if (home->L != path->store->L)
        return -EXDEV;
    if (path->store->used)
        return -EBUSY;
    struct vsw_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    int r = vsw_path_create(VSW_PATH_MEMORY, home, membus, NULL, &c->mem);
    c->at = calloc(path->store->nslots, sizeof(*c->at));
    c->scratch = aligned_alloc(VSW_ALIGN, 2 * VSW_MAX_CONTEXT);
    if (r < 0 || !c->at || !c->scratch) {
        vsw_cache_destroy(c);
        return r < 0 ? r : -ENOMEM;
    }
    c->path = path;
    c->store = path->store;
    c->home = home;
    c->membus = membus;
    c->p = *params;
    c->c.home_capacity = home->nslots;
    *out = c;
    return 0;
}

void vsw_cache_destroy(struct vsw_cache *c)
{
    if (!c)
        return;
    vsw_path_destroy(c->mem);
    free(c->at);
    free(c->scratch);
    free(c->plan_seq);
    free(c->plan_next);
    free(c);
}

int vsw_cache_counters(struct vsw_cache *c, struct vsw_cache_counters *out)
{
    if (!c || !out)
        return -EINVAL;
    vsw_lock(&c->lock);
    *out = c->c;
    for (const struct vsw_ctx *x = c->all; x; x = x->next)
        out->hits += __atomic_load_n(&x->hits, __ATOMIC_RELAXED);
    out->fetch_ps = __atomic_load_n(&c->c.fetch_ps, __ATOMIC_RELAXED);
    out->writeback_ps = __atomic_load_n(&c->c.writeback_ps, __ATOMIC_RELAXED);
    vsw_unlock(&c->lock);
    return 0;
}

int vsw_cache_reset_counters(struct vsw_cache *c)
{
    if (!c)
        return -EINVAL;
    vsw_lock(&c->lock);
    for (struct vsw_ctx *x = c->all; x; x = x->next)
        __atomic_store_n(&x->hits, 0, __ATOMIC_RELAXED);
    c->c.hits = c->c.misses = c->c.writebacks = c->c.bytes_fetched = c->c.bytes_written_back = 0;
    __atomic_store_n(&c->c.fetch_ps, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->c.writeback_ps, 0, __ATOMIC_RELAXED);
    vsw_unlock(&c->lock);
    return 0;
}

int vsw_cache_inject(struct vsw_cache *c, uint32_t kind, uint32_t group)
{
    if (!c || kind > VSW_CACHE_FAULT_WRITEBACK || group >= c->store->L->ngroups)
        return -EINVAL;
    vsw_lock(&c->lock);
    c->fault_kind = kind;
    c->fault_group = group;
    vsw_unlock(&c->lock);
    return 0;
}

/* Groups an armed fault of `kind` lets through before it strikes (all: none armed); disarms it. */
static uint32_t take_fault(struct vsw_cache *c, uint32_t kind, uint32_t mask)
{
    if (c->fault_kind != kind)
        return mask;
    c->fault_kind = VSW_CACHE_FAULT_NONE;
    return mask & ((1u << c->fault_group) - 1);
}

/* ---- policy ---- */
/* Under the lock: no context in the store has a known next use (Belady's plan is gone). */
static void forget_next_uses(struct vsw_cache *c)
{
    for (uint32_t i = 0; i < c->store->nslots; i++)
        if (c->at[i])
            c->at[i]->next_use = UINT64_MAX;
}

/* A load of x at model time `now`, under the lock: a plan is followed too. */
static void touch(struct vsw_cache *c, struct vsw_ctx *x, uint64_t now)
{
    vsw_cache_note_use(x, now);
    if (c->plan_pos < c->plan_len) {
        if (c->plan_seq[c->plan_pos] == x) {
            x->next_use = c->plan_next[c->plan_pos++];
            if (c->plan_pos == c->plan_len)
                __atomic_store_n(&c->plan_len, 0, __ATOMIC_RELAXED);
        } else {                /* off plan: every context's next use is unknown from here */
            __atomic_store_n(&c->plan_len, 0, __ATOMIC_RELAXED);
            forget_next_uses(c);
            x->next_use = UINT64_MAX;
        }
    }
}

/* Not pinned and not on a PCPU (one held by an accessor is waited for). */
static bool evictable(const struct vsw_cache *c, const struct vsw_ctx *x)
{
    return x && !x->pinned && !vsw_slot_on_pcpu(__atomic_load_n(&c->store->slots[x->slot]->resident,
                                                                 __ATOMIC_ACQUIRE));
}

/* Whether a switch in flight holds an unpinned context: its PCPU gives one back when it commits. */
static bool in_flight(const struct vsw_cache *c)
{
    for (uint32_t i = 0; i < c->store->nslots; i++) {
        const struct vsw_ctx *x = c->at[i];
        if (x && !x->pinned && __atomic_load_n(&c->store->slots[i]->resident, __ATOMIC_ACQUIRE) == VSW_SLOT_LOADING)
            return true;
    }
    return false;
}

/* Whether a was loaded less recently than b: in the order of loads (LRU), or by
 * the loading PCPU's model time, ties in that order (LRU_TIME); never loaded
 * (seq 0) is least recent of all. */
static bool older(const struct vsw_ctx *a, const struct vsw_ctx *b, bool by_time)
{
    uint64_t sa = __atomic_load_n(&a->seq, __ATOMIC_RELAXED), sb = __atomic_load_n(&b->seq, __ATOMIC_RELAXED);
    if (by_time && sa && sb) {
        uint64_t ta = __atomic_load_n(&a->stamp, __ATOMIC_RELAXED), tb = __atomic_load_n(&b->stamp, __ATOMIC_RELAXED);
        if (ta != tb)
            return ta < tb;
    }
    return sa < sb;
}

/* Least recently loaded (never loaded first, the lowest slot first), or -
 * Belady - the one loaded again last, ties least recently loaded. */
static struct vsw_ctx *by_scan(struct vsw_cache *c, uint32_t policy)
{
    bool belady = policy == VSW_POLICY_BELADY, by_time = policy == VSW_POLICY_LRU_TIME;
    struct vsw_ctx *best = NULL;
    for (uint32_t i = 0; i < c->store->nslots; i++) {
        struct vsw_ctx *x = c->at[i];
        if (!evictable(c, x))
            continue;
        if (!best || (belady && x->next_use > best->next_use) ||
            ((!belady || x->next_use == best->next_use) && older(x, best, by_time)))
            best = x;
    }
    return best;
}

static struct vsw_ctx *victim(struct vsw_cache *c)
{
    if (c->p.policy != VSW_POLICY_CLOCK)
        return by_scan(c, c->p.policy);
    for (uint32_t i = 0, n = c->store->nslots; i <= 2 * n; i++) {
        struct vsw_ctx *x = c->at[c->hand];
        c->hand = (c->hand + 1) % n;
        if (!evictable(c, x))
            continue;
        if (!__atomic_load_n(&x->ref, __ATOMIC_RELAXED))
            return x;
        __atomic_store_n(&x->ref, 0, __ATOMIC_RELAXED);
    }
    return NULL;
}

int vsw_cache_plan(struct vsw_cache *c, struct vsw_ctx *const *seq, uint64_t n)
{
    if (!c || (n && !seq))
        return -EINVAL;
    for (uint64_t i = 0; i < n; i++)
        if (!seq[i] || seq[i]->cache != c || seq[i]->released)
            return -EINVAL;
    struct vsw_ctx **s = n ? malloc(n * sizeof(*s)) : NULL;
    uint64_t *next = n ? malloc(n * sizeof(*next)) : NULL;
    if (n && (!s || !next)) {
        free(s);
        free(next);
        return -ENOMEM;
    }
    vsw_lock(&c->lock);
    for (uint64_t i = 0; i < n; i++)
        seq[i]->plan_mark = UINT64_MAX;
    for (uint64_t i = n; i-- > 0;) {
        s[i] = seq[i];
        next[i] = seq[i]->plan_mark;
        seq[i]->plan_mark = i;
    }
    forget_next_uses(c);
    for (uint64_t i = 0; i < n; i++)
        seq[i]->next_use = seq[i]->plan_mark;
    free(c->plan_seq);
    free(c->plan_next);
    c->plan_seq = s;
    c->plan_next = next;
    c->plan_pos = 0;
    __atomic_store_n(&c->plan_len, n, __ATOMIC_RELAXED);
    vsw_unlock(&c->lock);
    return 0;
}

/* ---- moving contexts between home and the store ---- */
void vsw_cache_place(struct vsw_cache *c, struct vsw_ctx *x, uint32_t slot)
{
    c->at[slot] = x;
    __atomic_store_n(&x->slot, slot, __ATOMIC_RELEASE);
    c->c.resident++;
}

void vsw_cache_unplace(struct vsw_cache *c, struct vsw_ctx *x)
{
    c->at[x->slot] = NULL;
    __atomic_store_n(&x->slot, VSW_NO_SLOT, __ATOMIC_RELEASE);
    c->c.resident--;
}

/* The victim's changed groups into its home (backed now if it has none): all
 * or nothing.  Returns the bytes written. */
static int64_t write_back(struct vsw_cache *c, struct vsw_ctx *v, struct vsw_slot *sl, struct vsw_fill *fill)
{
    const struct vsw_layout_def *L = c->store->L;
    uint32_t mask = sl->changed;
    if (!mask)
        return 0;
    uint8_t *regs = c->scratch + VSW_MAX_CONTEXT;
    int r = vsw_slot_read_checked(L, sl, regs, mask);
    if (r < 0)
        return r;
    if (v->home == VSW_NO_SLOT) {
        r = vsw_store_alloc(c->home, v->owner);
        if (r < 0)
            return r;
        v->home = (uint32_t)r;
    }
    struct vsw_slot *h = c->home->slots[v->home];
    if (vsw_store_hold(h) < 0)
        return -EBUSY;
    uint32_t through = take_fault(c, VSW_CACHE_FAULT_WRITEBACK, mask);
    vsw_slot_write_shadow(L, h, regs, through);
    if (through != mask) {      /* the shadow banks are half written; home still holds what it held */
        vsw_store_release(c->home, h);
        return -EIO;
    }
    vsw_slot_commit(h, mask);
    h->generation = sl->generation;
    vsw_store_release(c->home, h);
    sl->changed = 0;
    uint64_t bytes = mask_bytes(L, mask);
    fill->wb_mask = mask;
    fill->wb_bytes = bytes;
    c->c.writebacks++;
    c->c.bytes_written_back += bytes;
    return (int64_t)bytes;
}

/* Under the lock: a fingerprint of who is where - each slot's context, its state
 * and its last use (a claim writes the use, so a context that left a PCPU and came
 * back between two looks changes it too). */
static uint64_t fingerprint(const struct vsw_cache *c)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < c->store->nslots; i++) {
        const struct vsw_ctx *x = c->at[i];
        uint64_t v = 0;
        if (x)
            v = (uint64_t)(uintptr_t)x ^ __atomic_load_n(&x->stamp, __ATOMIC_RELAXED) ^
                (uint64_t)__atomic_load_n(&c->store->slots[i]->resident, __ATOMIC_ACQUIRE) << 61;
        h = (h ^ v) * 0x100000001b3ull;
    }
    return h;
}

/* A victim, held: the policy's choice, again while a lock-free hit holds it or a
 * switch in flight on another PCPU is about to give one back.  NULL - the store
 * is full for good, every context in it pinned or running - only when two looks,
 * a yield apart, found no candidate, none in flight and nothing moved between
 * them: a hit and its commit take no lock, so one look can see a PCPU's outgoing
 * context still loaded and its incoming one already loaded.  Giving up after a
 * fixed number of tries made a miss fail with ENOSPC beside a hot PCPU. */
static struct vsw_ctx *hold_victim(struct vsw_cache *c)
{
    uint64_t seen = 0;
    bool looked = false;
    for (unsigned spins = 0;; spins++) {
        struct vsw_ctx *v = victim(c);
        if (v && vsw_store_hold(c->store->slots[v->slot]) == 0)
            return v;
        if (!v && !in_flight(c)) {
            uint64_t now = fingerprint(c);
            if (looked && now == seen)
                return NULL;
            seen = now;
            looked = true;
            for (int i = 0; i < 64; i++)
                vsw_cpu_relax();    /* a commit under way elsewhere shows in the second look */
        } else {
            looked = false;     /* a hit holds the candidate, or a switch in flight commits soon */
            if (spins % 64 == 63)
                sched_yield();  /* its thread may be descheduled mid-claim */
            else
                vsw_cpu_relax();
        }
    }
}

/* A slot for x, held: a free one, or the victim's (*victim), its changes
 * written back.  Returns the slot number. */
static int take_slot(struct vsw_cache *c, struct vsw_ctx *x, struct vsw_fill *fill, struct vsw_ctx **victim)
{
    if (c->store->nfree) {
        int r = vsw_store_alloc(c->store, x->owner);
        if (r >= 0)
            vsw_store_hold(c->store->slots[r]);
        return r;
    }
    struct vsw_ctx *v = hold_victim(c);
    if (!v)                     /* every context in the store is pinned or running */
        return -ENOSPC;
    int64_t w = write_back(c, v, c->store->slots[v->slot], fill);
    if (w < 0) {
        vsw_store_release(c->store, c->store->slots[v->slot]);
        return (int)w;
    }
    *victim = v;
    return (int)v->slot;
}

/* Brings x's context into the store (it is not there): read from home, a slot
 * taken (a free one, or a victim's, written back), refilled in its shadow
 * banks and committed for x with one flip. */
int vsw_cache_fetch(struct vsw_cache *c, struct vsw_ctx *x, struct vsw_fill *fill)
{
    const struct vsw_layout_def *L = c->store->L;
    uint32_t all = vsw_layout_all(L);
    struct vsw_slot *h = c->home->slots[x->home];
    if (vsw_store_hold(h) < 0)
        return -EBUSY;
    int r = vsw_slot_read_checked(L, h, c->scratch, all);
    uint64_t generation = h->generation;
    vsw_store_release(c->home, h);
    if (r < 0)
        return r;
    struct vsw_ctx *v = NULL;
    r = take_slot(c, x, fill, &v);
    if (r < 0)
        return r;
    uint32_t index = (uint32_t)r;
    struct vsw_slot *sl = c->store->slots[index];
    uint32_t through = take_fault(c, VSW_CACHE_FAULT_FETCH, all);
    vsw_slot_write_shadow(L, sl, c->scratch, through);
    if (through != all) {       /* only shadow banks were written: the slot's machine keeps it, whole */
        vsw_store_release(c->store, sl);
        if (!v)
            vsw_store_free(c->store, index, x->owner);
        return -EIO;
    }
    if (v)
        vsw_cache_unplace(c, v);
    *sl = (struct vsw_slot){.owner = x->owner, .generation = generation, .valid_mask = all,
                            .bank_mask = sl->bank_mask ^ all, .mem = sl->mem, .bank = {sl->bank[0], sl->bank[1]},
                            .sum = {sl->sum[0], sl->sum[1]}, .resident = VSW_SLOT_HELD};
    vsw_cache_place(c, x, index);
    vsw_store_release(c->store, sl);
    fill->fetch_mask = all;
    fill->fetch_bytes = L->size;
    c->c.misses++;
    c->c.bytes_fetched += L->size;
    return 0;
}

int vsw_cache_claim(struct vsw_pcpu *p, struct vsw_ctx *x, struct vsw_slot **slot, uint32_t *index,
                    struct vsw_fill *fill)
{
    struct vsw_cache *c = x->cache;
    *fill = (struct vsw_fill){.result = VSW_CACHE_HIT};
    int r = 0;
    vsw_lock(&c->lock);
    if (x->slot == VSW_NO_SLOT) {
        fill->result = VSW_CACHE_MISS;
        r = x->home == VSW_NO_SLOT ? -ENOENT : vsw_cache_fetch(c, x, fill);
    }
    if (r == 0) {
        struct vsw_slot *sl = c->store->slots[x->slot];
        r = vsw_store_claim(c->store, sl);
        if (r == 0) {
            touch(c, x, p->now_ps);
            if (fill->result == VSW_CACHE_HIT)
                vsw_cache_count_hit(x);
            *slot = sl;
            *index = x->slot;
        }
    }
    vsw_unlock(&c->lock);
    return r;
}

/* One direction of a fill: MEM's side (the PCPU's registers over the memory
 * bus, or the mover's bursts when it reaches DRAM), then the store's side
 * (bursts over the storage bus) - store and forward, one after the other. */
static uint64_t fill_cost(struct vsw_cache *c, uint32_t dir, uint32_t mask, uint64_t start_ps,
                          struct vsw_trace *t, const struct vsw_trace_record *proto, struct vsw_tally *tally)
{
    const struct vsw_layout_def *L = c->store->L;
    uint32_t units;
    uint64_t ps = 0;
    struct vsw_tally none = {0, 0, 0};
    if (c->p.fetch_via == VSW_FETCH_MOVER) {
        uint32_t mb = c->path->mp.max_burst;
        FOR_EACH_RUN(mask, first, last) {
            uint64_t bytes = run_bytes(L, first, last);
            if (bytes >= mb)
                ps += vsw_bus_cost(c->membus, (uint32_t)(bytes / mb), mb, NULL, true);
            if (bytes % mb)
                ps += vsw_bus_cost(c->membus, 1, (uint32_t)(bytes % mb), NULL, true);
        }
    } else {
        ps = vsw_path_charge(c->mem, t, dir, mask, start_ps, proto, &units, &none);
    }
    return ps + vsw_path_charge(c->path, t, dir, mask, start_ps + ps, proto, &units, tally);
}

uint64_t vsw_cache_charge(struct vsw_cache *c, const struct vsw_fill *fill, uint64_t start_ps, struct vsw_trace *t,
                          const struct vsw_trace_record *proto, struct vsw_tally *tally)
{
    uint64_t wb = 0, fetched = 0;
    if (fill->wb_mask) {
        wb = fill_cost(c, VSW_DIR_SAVE, fill->wb_mask, start_ps, t, proto, tally);
        __atomic_fetch_add(&c->c.writeback_ps, wb, __ATOMIC_RELAXED);
    }
    if (fill->fetch_mask) {
        fetched = fill_cost(c, VSW_DIR_LOAD, fill->fetch_mask, start_ps + wb, t, proto, tally);
        __atomic_fetch_add(&c->c.fetch_ps, fetched, __ATOMIC_RELAXED);
    }
    return wb + fetched;
}
