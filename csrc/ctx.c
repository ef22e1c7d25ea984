/*
 * ctx.c - context handles: a machine's context as the fast path names it (a
 * slot of a path's store and its owner), bound once, carrying the epoch of the
 * PCPUs' last thaw; retiring one waits out any switch that read it.
 */
#include "vsw_internal.h"
#include <stdlib.h>

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
    *c = (struct vsw_ctx){.path = path, .slot = slot, .owner = owner, .epoch = epoch};
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

int vsw_ctx_revive(struct vsw_ctx *c, uint64_t epoch)
{
    if (!c || epoch == VSW_EPOCH_RETIRED || c->released)
        return -EINVAL;
    __atomic_store_n(&c->epoch, epoch, __ATOMIC_SEQ_CST);
    return 0;
}
