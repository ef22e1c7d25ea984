/*
 * bus.c - transaction-level bus cost model.
 *
 * A transaction of B bytes costs: arbitration wait + setup cycles + ceil(B / width)
 * beats, at the bus clock.  A point-to-point bus never waits.  On a shared bus,
 * other masters keep it busy a fraction u of the time: before each transaction
 * the number of their transactions still ahead is geometric, P(k) = (1-u) u^k,
 * drawn from a seeded generator (one draw per transaction, by inverse CDF, so a
 * higher u never shortens a wait for the same seed).
 */
#include "vsw_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Model time is whole picoseconds in 64 bits.  A wait drawn near utilisation 1 (any
 * fraction below 1 is allowed) can exceed any of it: every wait, cost and conversion
 * saturates at BUS_MAX (about 20 hours in ps), so the few dozen costs a switch adds up
 * cannot wrap - a cost is never below the idle bus's, a counter never goes down. */
#define BUS_MAX (UINT64_MAX >> 8)

static uint64_t sat_add(uint64_t a, uint64_t b, uint64_t max)
{
    return a > max || b > max - a ? max : a + b;
}

static uint64_t sat_from(double v)
{
    return v < (double)BUS_MAX ? (uint64_t)v : BUS_MAX;
}

static uint64_t beats(const struct vsw_bus_params *p, uint64_t bytes)
{
    return (bytes + p->width_bytes - 1) / p->width_bytes;
}

static int check(const struct vsw_bus_params *p)
{
    if (!p || p->width_bytes == 0 || p->clock_mhz == 0 || p->other_bytes == 0 || p->masters == 0 ||
        p->kind > VSW_BUS_MEMORY)
        return -EINVAL;
    if (!(p->utilisation >= 0.0 && p->utilisation < 1.0))
        return -EDOM;
    if (!p->shared && p->utilisation != 0.0)
        return -EINVAL;
    return 0;
}

int vsw_bus_configure(struct vsw_bus *bus, const struct vsw_bus_params *p)
{
    int r = check(p);
    if (r < 0)
        return r;
    if (!bus)
        return -EINVAL;
    vsw_lock(&bus->lock);
    bus->p = *p;
    bus->rng = p->seed;
    bus->log_u = p->utilisation > 0.0 ? log(p->utilisation) : 0.0;
    bus->other_cycles = p->setup_cycles + beats(p, p->other_bytes);
    bus->mean_wait_cycles = p->shared ? p->utilisation / (1.0 - p->utilisation) * (double)bus->other_cycles : 0.0;
    bus->ps_per_cycle = (double)VSW_PS_PER_US / p->clock_mhz;
    __atomic_fetch_add(&bus->version, 1, __ATOMIC_RELEASE);
    vsw_unlock(&bus->lock);
    return 0;
}

int vsw_bus_create(const struct vsw_bus_params *p, struct vsw_bus **out)
{
    int r = check(p);
    if (r < 0)
        return r;
    if (!out)
        return -EINVAL;
    struct vsw_bus *bus = aligned_alloc(VSW_ALIGN, sizeof(*bus));
    if (!bus)
        return -ENOMEM;
    memset(bus, 0, sizeof(*bus));
    vsw_bus_configure(bus, p);
    *out = bus;
    return 0;
}

void vsw_bus_destroy(struct vsw_bus *bus) { free(bus); }

int vsw_bus_get_params(const struct vsw_bus *bus, struct vsw_bus_params *out)
{
    if (!bus || !out)
        return -EINVAL;
    *out = bus->p;
    return 0;
}

int vsw_bus_counters(const struct vsw_bus *bus, struct vsw_bus_counters *out)
{
    if (!bus || !out)
        return -EINVAL;
    vsw_lock((int *)&bus->lock);
    *out = bus->c;
    vsw_unlock((int *)&bus->lock);
    for (uint32_t i = 0; i < VSW_BUS_SHARDS; i++) {
        const struct vsw_bus_shard *sh = &bus->shard[i];
        out->transactions += __atomic_load_n(&sh->transactions, __ATOMIC_RELAXED);
        out->bytes += __atomic_load_n(&sh->bytes, __ATOMIC_RELAXED);
        out->busy_cycles += __atomic_load_n(&sh->busy_cycles, __ATOMIC_RELAXED);
    }
    return 0;
}

/* Zeroes the counters and restarts the contention sequence from the seed. */
int vsw_bus_reset(struct vsw_bus *bus)
{
    if (!bus)
        return -EINVAL;
    vsw_lock(&bus->lock);
    bus->c = (struct vsw_bus_counters){0};
    for (uint32_t i = 0; i < VSW_BUS_SHARDS; i++)
        bus->shard[i] = (struct vsw_bus_shard){0, 0, 0};
    bus->rng = bus->p.seed;
    bus->free_at_ps = 0;
    vsw_unlock(&bus->lock);
    return 0;
}

uint64_t vsw_bus_cycles_to_ps(const struct vsw_bus *bus, uint64_t cycles)
{
    return sat_from((double)cycles * bus->ps_per_cycle + 0.5);
}

/* Other masters' transactions ahead of ours: geometric, by inverse CDF. */
static uint64_t draw_wait(struct vsw_bus *bus)
{
    /* 53 random bits -> u in (0, 1] */
    double x = (double)((splitmix64(&bus->rng) >> 11) + 1) * (1.0 / 9007199254740992.0);
    return sat_from(floor(log(x) / bus->log_u) * (double)bus->other_cycles);
}

uint64_t vsw_bus_charge(struct vsw_bus *bus, uint32_t n, uint32_t bytes, uint64_t *wait_ps)
{
    return vsw_bus_cost(bus, n, bytes, wait_ps, true);
}

uint64_t vsw_bus_cost(struct vsw_bus *bus, uint32_t n, uint32_t bytes, uint64_t *wait_ps, bool count)
{
    uint64_t work = (uint64_t)n * (bus->p.setup_cycles + beats(&bus->p, bytes));
    uint64_t wait = 0;
    vsw_lock(&bus->lock);
    if (bus->p.shared && bus->p.utilisation > 0.0)
        for (uint32_t i = 0; i < n; i++)
            wait = sat_add(wait, draw_wait(bus), BUS_MAX);
    if (count) {
        bus->c.transactions += n;
        bus->c.bytes += (uint64_t)n * bytes;
        bus->c.busy_cycles += work;
        bus->c.wait_cycles = sat_add(bus->c.wait_cycles, wait, UINT64_MAX);
    }
    vsw_unlock(&bus->lock);
    if (wait_ps)
        *wait_ps = vsw_bus_cycles_to_ps(bus, wait);
    return vsw_bus_cycles_to_ps(bus, sat_add(work, wait, BUS_MAX));
}

uint64_t vsw_bus_cycles(const struct vsw_bus *bus, uint32_t bytes)
{
    return bus->p.setup_cycles + beats(&bus->p, bytes);
}

uint64_t vsw_bus_arbitrate(struct vsw_bus *bus, uint64_t start_ps, uint64_t busy_ps)
{
    vsw_lock(&bus->lock);
    uint64_t at = start_ps > bus->free_at_ps ? start_ps : bus->free_at_ps;
    bus->free_at_ps = sat_add(at, busy_ps, UINT64_MAX);
    bus->c.wait_cycles = sat_add(bus->c.wait_cycles, sat_from((double)(at - start_ps) / bus->ps_per_cycle + 0.5),
                                 UINT64_MAX);
    vsw_unlock(&bus->lock);
    return at - start_ps;
}

void vsw_bus_count(struct vsw_bus *bus, uint32_t shard, uint32_t transactions, uint64_t bytes, uint64_t busy_cycles)
{
    struct vsw_bus_shard *sh = &bus->shard[shard % VSW_BUS_SHARDS];
    __atomic_fetch_add(&sh->transactions, transactions, __ATOMIC_RELAXED);
    __atomic_fetch_add(&sh->bytes, bytes, __ATOMIC_RELAXED);
    __atomic_fetch_add(&sh->busy_cycles, busy_cycles, __ATOMIC_RELAXED);
}

/* Mean of the geometric wait: u / (1 - u) transactions of another master. */
uint64_t vsw_bus_expect(const struct vsw_bus *bus, uint32_t n, uint32_t bytes)
{
    double cycles = (double)(bus->p.setup_cycles + beats(&bus->p, bytes)) + bus->mean_wait_cycles;
    return sat_from(n * cycles * bus->ps_per_cycle + 0.5);
}

int vsw_bus_transact(struct vsw_bus *bus, uint32_t bytes, uint64_t *wait_ps, uint64_t *ps)
{
    if (!bus || !ps || bytes == 0)
        return -EINVAL;
    *ps = vsw_bus_charge(bus, 1, bytes, wait_ps);
    return 0;
}
