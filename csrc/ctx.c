/*
 * ctx.c - context handles: a machine's context as the fast path names it (a
 * slot of a path's store and its owner), bound once, carrying the epoch of the
 * PCPUs' last thaw; retiring one waits out any switch that read it.  Every
 * vsw_ctx_* lives here: a handle of a plain store, and a handle of a cache
 * (cache.c moves its context between home and the store).
 */
#include "cache.h"
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

/* ---- handles of a cache ---- */
int vsw_ctx_create_cached(struct vsw_cache *c, uint64_t owner, uint64_t epoch, struct vsw_ctx **out)
{
    if (!c || !out || owner == 0 || epoch == UINT64_MAX)
        return -EINVAL;
    struct vsw_ctx *x = malloc(sizeof(*x));
    if (!x)
        return -ENOMEM;
    *x = (struct vsw_ctx){.path = c->path, .slot = VSW_NO_SLOT, .owner = owner, .epoch = epoch, .cache = c,
                          .home = VSW_NO_SLOT, .next_use = UINT64_MAX};
    vsw_lock(&c->lock);
    int r = c->c.machines < c->c.home_capacity ? 0 : -ENOSPC;
    if (r == 0 && c->store->nfree) {
        r = vsw_store_alloc(c->store, owner);
        if (r >= 0) {
            c->store->slots[r]->changed = vsw_layout_all(c->store->L);    /* nothing of it at home yet */
            vsw_cache_place(c, x, (uint32_t)r);
        }
    } else if (r == 0) {
        r = vsw_store_alloc(c->home, owner);
        if (r >= 0)
            x->home = (uint32_t)r;
    }
    if (r >= 0) {
        c->c.machines++;
        x->next = c->all;
        if (c->all)
            c->all->prev = x;
        c->all = x;
    }
    vsw_unlock(&c->lock);
    if (r < 0) {
        free(x);
        return r;
    }
    *out = x;
    return 0;
}

int vsw_ctx_pin(struct vsw_ctx *x, uint32_t pinned)
{
    if (!x || !x->cache || x->released)
        return -EINVAL;
    struct vsw_cache *c = x->cache;
    struct vsw_fill fill = {0};
    int r = 0;
    vsw_lock(&c->lock);
    if (pinned && !x->pinned) {
        if (x->slot == VSW_NO_SLOT)
            r = vsw_cache_fetch(c, x, &fill);
        if (r == 0) {
            x->pinned = 1;
            c->c.pinned++;
        }
    } else if (!pinned && x->pinned) {
        x->pinned = 0;
        c->c.pinned--;
    }
    vsw_unlock(&c->lock);
    return r;
}

/* Under the cache's lock for a cached handle: the store and slot holding x's context now. */
static int locate(const struct vsw_ctx *x, struct vsw_store **s, uint32_t *slot)
{
    if (x->released)
        return -ENOENT;
    if (!x->cache || x->slot != VSW_NO_SLOT) {
        *s = x->path->store;
        *slot = x->slot;
    } else {
        *s = x->cache->home;
        *slot = x->home;
    }
    return 0;
}

static void enter(const struct vsw_ctx *x)
{
    if (x->cache)
        vsw_lock(&x->cache->lock);
}

static void leave(const struct vsw_ctx *x)
{
    if (x->cache)
        vsw_unlock(&x->cache->lock);
}

int vsw_ctx_where(struct vsw_ctx *x, struct vsw_ctx_where *out)
{
    struct vsw_store *s;
    uint32_t slot;
    struct vsw_slot *sl;
    if (!x || !out)
        return -EINVAL;
    enter(x);
    int r = locate(x, &s, &slot);
    if (r == 0)
        r = vsw_store_slot(s, slot, x->owner, &sl);
    if (r == 0) {
        bool in_store = s == x->path->store;
        *out = (struct vsw_ctx_where){
            .resident = in_store, .slot = in_store ? slot : VSW_NO_SLOT,
            .loaded = vsw_slot_on_pcpu(__atomic_load_n(&sl->resident, __ATOMIC_ACQUIRE)),
            .pinned = x->pinned, .changed_mask = in_store ? sl->changed : 0, .cached = x->cache != NULL,
            .generation = sl->generation};
    }
    leave(x);
    return r;
}

/* The store call each accessor forwards to, on the store and slot holding the
 * context now, the cache held still for it: the same contract as that call. */
enum ctx_op { CTX_READ, CTX_WRITE, CTX_EXPORT, CTX_IMPORT };

static int on_context(struct vsw_ctx *x, enum ctx_op op, uint32_t offset, void *buf, size_t len,
                      struct vsw_image_info *info)
{
    struct vsw_store *s;
    uint32_t slot;
    if (!x)
        return -EINVAL;
    enter(x);
    int r = locate(x, &s, &slot);
    if (r == 0) {
        switch (op) {
        case CTX_READ:
            r = vsw_store_read(s, slot, x->owner, offset, buf, (uint32_t)len);
            break;
        case CTX_WRITE:
            r = vsw_store_write(s, slot, x->owner, offset, buf, (uint32_t)len);
            break;
        case CTX_EXPORT:
            r = vsw_store_export(s, slot, x->owner, buf, len);
            break;
        case CTX_IMPORT:
            r = vsw_store_import(s, slot, x->owner, buf, len, info);
            break;
        }
    }
    leave(x);
    return r;
}

int vsw_ctx_read(struct vsw_ctx *x, uint32_t offset, void *buf, uint32_t len)
{
    return on_context(x, CTX_READ, offset, buf, len, NULL);
}

int vsw_ctx_write(struct vsw_ctx *x, uint32_t offset, const void *buf, uint32_t len)
{
    return on_context(x, CTX_WRITE, offset, (void *)buf, len, NULL);
}

int vsw_ctx_export(struct vsw_ctx *x, void *out, size_t len) { return on_context(x, CTX_EXPORT, 0, out, len, NULL); }

int vsw_ctx_import(struct vsw_ctx *x, const void *img, size_t len, struct vsw_image_info *info)
{
    return on_context(x, CTX_IMPORT, 0, (void *)img, len, info);
}

int vsw_ctx_release(struct vsw_ctx *x)
{
    if (!x || !x->cache)
        return -EINVAL;
    struct vsw_cache *c = x->cache;
    int r = 0;
    vsw_lock(&c->lock);
    if (x->released)
        r = -ENOENT;
    else if (x->slot != VSW_NO_SLOT)
        r = vsw_store_free(c->store, x->slot, x->owner);
    if (r == 0) {
        if (x->slot != VSW_NO_SLOT)
            vsw_cache_unplace(c, x);
        if (x->home != VSW_NO_SLOT)
            vsw_store_free(c->home, x->home, x->owner);
        x->home = VSW_NO_SLOT;
        if (x->pinned)
            c->c.pinned--;
        x->pinned = 0;
        x->released = 1;
        c->c.machines--;
        c->c.hits += x->hits;   /* kept: the handle leaves the list */
        if (x->prev)
            x->prev->next = x->next;
        else
            c->all = x->next;
        if (x->next)
            x->next->prev = x->prev;
        x->next = x->prev = NULL;
    }
    vsw_unlock(&c->lock);
    return r;
}
