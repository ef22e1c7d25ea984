/*
 * bench.c - the switch loop timed in C, and its floor: memcpy of the same bytes
 * in the same per-switch chunks, between buffers of the same sizes, in the same
 * call - so the ratio holds on a noisy machine - and where the rest goes: the
 * switch's checked copies alone, and its atomic operations alone.
 */
#define _POSIX_C_SOURCE 199309L
#include "transfer.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* The checked copies of `switches` switches round-robin, into scratch: the
 * dirty groups out of the register file with their checks recorded (the save),
 * the next machine's slot in with its checks compared (the load) - what the
 * switch moves, without the gate, the claim, the commit or the cost model. */
static int64_t time_data_path(struct vsw_pcpu *p, struct vsw_path *path, const uint32_t *slots,
                              const uint64_t *owners, uint32_t machines, uint64_t switches, uint32_t dirty_mask)
{
    const struct vsw_layout_def *L = p->L;
    uint8_t *regs = aligned_alloc(VSW_ALIGN, L->size), *bank = aligned_alloc(VSW_ALIGN, L->size);
    struct vsw_check *sums = calloc(L->ngroups, sizeof *sums);
    int64_t r = -ENOMEM;
    if (!regs || !bank || !sums)
        goto out;
    memcpy(regs, p->regs, L->size);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0, m = 0; i < switches; i++, m = m + 1 == machines ? 0 : m + 1) {
        struct vsw_slot *next;
        struct vsw_transfer x;
        uint32_t k = m + 1 == machines ? 0 : (uint32_t)m + 1;
        if ((r = vsw_store_slot(path->store, slots[k], owners[k], &next)) < 0)
            goto out;
        FOR_EACH_RUN(dirty_mask & next->valid_mask, first, last)
            vsw_copy_groups(bank, regs, L->groups, first, last, sums);
        if ((r = vsw_path_load(path, regs, next, &x)) < 0)
            goto out;
    }
    r = (int64_t)(now_ns() - t0);
out:
    free(regs);
    free(bank);
    free(sums);
    return r;
}

/* The atomic operations of `switches` switches alone, on private words laid out
 * like the real ones: enter the PCPU's gate, claim the incoming slot, release
 * the outgoing one, mark the incoming loaded, count three bus counters, leave. */
static uint64_t time_atomics(uint64_t switches)
{
    struct {
        uint32_t busy, slot[2];
        uint64_t counter[3];
    } w = {0, {VSW_SLOT_SAVED, VSW_SLOT_LOADED}, {0, 0, 0}};
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < switches; i++) {
        uint32_t *to = &w.slot[i & 1], *from = &w.slot[~i & 1], seen = VSW_SLOT_SAVED;
        (void)__atomic_exchange_n(&w.busy, 1, __ATOMIC_ACQUIRE);
        (void)__atomic_compare_exchange_n(to, &seen, VSW_SLOT_LOADING, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
        __atomic_store_n(from, VSW_SLOT_SAVED, __ATOMIC_RELEASE);
        __atomic_store_n(to, VSW_SLOT_LOADED, __ATOMIC_RELEASE);
        for (int c = 0; c < 3; c++)
            __atomic_fetch_add(&w.counter[c], i, __ATOMIC_RELAXED);
        __atomic_store_n(&w.busy, 0, __ATOMIC_RELEASE);
    }
    return now_ns() - t0;
}

int vsw_bench_switch_loop(struct vsw_pcpu *p, struct vsw_path *path, const uint32_t *slots,
                          const uint64_t *owners, uint32_t machines, uint64_t switches, uint32_t dirty_mask,
                          struct vsw_bench_result *out)
{
    if (!p || !path || !slots || !owners || !out || machines < 2 || switches == 0)
        return -EINVAL;
    if (p->owner != owners[0])
        return -ESRCH;
    struct vsw_switch_stats st;
    uint64_t bytes = 0, save = 0, load = 0;
    uint32_t cur = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < switches; i++) {
        uint32_t next = (cur + 1) % machines;
        if (dirty_mask)
            vsw_pcpu_mark_dirty(p, dirty_mask);
        int r = vsw_switch_slots(p, path, owners[cur], slots[next], owners[next], &st);
        if (r < 0)
            return r;
        bytes += st.bytes_saved + st.bytes_loaded;
        save = st.bytes_saved;
        load = st.bytes_loaded;
        cur = next;
    }
    uint64_t t1 = now_ns();
    /* the floor: the same bytes per switch, copied between buffers with the same
     * footprint as the machines' contexts (one pair per machine), so a cold-cache
     * round robin is compared with a cold-cache copy */
    size_t n = p->L->size;
    uint8_t *src = aligned_alloc(VSW_ALIGN, (size_t)machines * n), *dst = aligned_alloc(VSW_ALIGN, (size_t)machines * n);
    if (!src || !dst) {
        free(src);
        free(dst);
        return -ENOMEM;
    }
    memset(src, 0x5a, (size_t)machines * n);
    memset(dst, 0xa5, (size_t)machines * n);
    uint64_t t2 = now_ns();
    for (uint64_t i = 0, m = 0; i < switches; i++, m = m + 1 == machines ? 0 : m + 1) {
        memcpy(dst + m * n, src + m * n, save);
        memcpy(src + m * n, dst + ((m + 1) % machines) * n, load);
        __asm__ __volatile__("" : : "r"(dst), "r"(src) : "memory");
    }
    uint64_t t3 = now_ns();
    free(src);
    free(dst);
    int64_t data_ns = time_data_path(p, path, slots, owners, machines, switches, dirty_mask);
    if (data_ns < 0)
        return (int)data_ns;
    uint64_t atomics_ns = time_atomics(switches);
    /* return to the first machine so the caller's view stays simple */
    if (cur != 0) {
        int r = vsw_switch_slots(p, path, owners[cur], slots[0], owners[0], &st);
        if (r < 0)
            return r;
    }
    *out = (struct vsw_bench_result){switches, bytes, t1 - t0, t3 - t2, (uint64_t)data_ns, atomics_ns};
    return 0;
}
