/*
 * schedule.c - a whole schedule of switches in one call: run the workload on
 * the machine on the PCPU, switch to the next (round robin, seeded random, or
 * a sequence a model drew),
 * again - without returning to Python, so a prototype's inner loop costs what
 * the C switch costs, and the GIL is free for the whole run.  Each switch is
 * one vsw_switch (atomic, through the PCPU's gate): a migration or a
 * refused switch ends the schedule there, everything before it done.
 */
#include "vsw_internal.h"
#include <string.h>

static uint64_t next_random(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* A plan fit to run from `current` over n contexts (a sequence is checked whole
 * before anything runs). */
static bool plan_ok(const struct vsw_schedule *plan, uint32_t n, uint32_t current)
{
    if (plan->order > VSW_ORDER_SEQUENCE)
        return false;
    if (plan->order != VSW_ORDER_SEQUENCE)
        return true;
    if (!plan->sequence && plan->switches)
        return false;
    for (uint64_t i = 0, before = current; i < plan->switches; before = plan->sequence[i++])
        if (plan->sequence[i] >= n || plan->sequence[i] == before)
            return false;
    return true;
}

static uint32_t next_of(const struct vsw_schedule *plan, uint64_t i, uint32_t current, uint32_t n, uint64_t *rng)
{
    if (plan->order == VSW_ORDER_SEQUENCE)
        return plan->sequence[i];
    if (plan->order == VSW_ORDER_ROUND_ROBIN)
        return (current + 1) % n;
    uint32_t next = (uint32_t)(next_random(rng) % (n - 1));
    return next >= current ? next + 1 : next;
}

/* Switch i done: its stats into the totals (and its costs into the plan's arrays). */
static void add(struct vsw_schedule_stats *out, const struct vsw_schedule *plan, uint64_t i,
                const struct vsw_switch_stats *st)
{
    if (plan->modeled_ps)
        plan->modeled_ps[i] = st->modeled_ps;
    if (plan->baseline_ps)
        plan->baseline_ps[i] = st->baseline_ps;
    out->switches++;
    out->save_units += st->save_units;
    out->load_units += st->load_units;
    out->bytes_saved += st->bytes_saved;
    out->bytes_loaded += st->bytes_loaded;
    out->data_ps += st->data_ps;
    out->modeled_ps += st->modeled_ps;
    out->baseline_ps += st->baseline_ps;
    out->hits += st->cache == VSW_CACHE_HIT;
    out->misses += st->cache == VSW_CACHE_MISS;
    out->writebacks += st->bytes_written_back != 0;
    out->bytes_fetched += st->bytes_fetched;
    out->bytes_written_back += st->bytes_written_back;
    out->cache_ps += st->cache_ps;
    if (st->modeled_ps > out->max_modeled_ps)
        out->max_modeled_ps = st->modeled_ps;
    if (!out->min_modeled_ps || st->modeled_ps < out->min_modeled_ps)
        out->min_modeled_ps = st->modeled_ps;
}

int vsw_run_schedule(struct vsw_pcpu *p, struct vsw_ctx *const *ctxs, uint32_t n, uint32_t current,
                     const struct vsw_schedule *plan, const volatile int *stop, struct vsw_schedule_stats *out)
{
    if (!p || !ctxs || !plan || !out || n < 2 || current >= n || !plan_ok(plan, n, current))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->current = current;
    out->steps_done = plan->steps_done;
    uint64_t rng = plan->seed ? plan->seed : 0x9e3779b97f4a7c15ull;
    struct vsw_switch_stats st;
    for (uint64_t i = 0; i < plan->switches; i++) {
        if (stop && *stop)
            return 0;
        if (plan->steps && !(i == 0 && plan->steps_done)) {
            int r = vsw_pcpu_run(p, plan->steps);
            if (r < 0)
                return r;
            out->steps += plan->steps;
        }
        out->steps_done = plan->steps != 0;
        uint32_t next = next_of(plan, i, current, n, &rng);
        int r = plan->dirty_mask ? vsw_pcpu_mark_dirty(p, plan->dirty_mask) : 0;
        if (r == 0)
            r = vsw_switch(p, ctxs[current], ctxs[next], &st);
        if (r < 0)
            return r;           /* refused: nothing of this switch happened; `current` still runs */
        current = next;
        out->current = current;
        out->steps_done = 0;
        add(out, plan, i, &st);
    }
    return 0;
}
