/*
 * store.c - the context store: fixed-capacity SRAM with one slot per machine.
 *
 * Every group of a slot has two banks and a bit in bank_mask saying which one
 * is committed.  A save writes the other (shadow) bank of each group it moves
 * and commits by flipping those bits in one store, so a fault mid-save never
 * touches the last good context.  Each bank group carries the check computed
 * as it was written; a load recomputes it as it reads.
 * The same model serves as the prior art's MEM region.
 */
#include "copy_sum.h"
#include "image.h"
#include <stdlib.h>
#include <string.h>

static size_t round_up(size_t n) { return (n + VSW_ALIGN - 1) / VSW_ALIGN * VSW_ALIGN; }

static size_t slot_bytes(const struct vsw_layout_def *L)
{
    return 2 * round_up(L->size) + round_up(2 * L->ngroups * sizeof(struct vsw_check)) +
           round_up(sizeof(struct vsw_slot));
}

int vsw_store_create(uint32_t layout, uint64_t capacity, struct vsw_store **out)
{
    const struct vsw_layout_def *L = vsw_layout_get(layout);
    if (!L)
        return -ENOENT;
    if (!out || capacity == 0)      /* no bytes at all: a bad argument, not a small store */
        return -EINVAL;
    uint64_t n = capacity / slot_bytes(L);
    if (n == 0)
        return -ENOSPC;
    if (n > (1u << 24))
        return -E2BIG;
    struct vsw_store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->slots = calloc(n, sizeof(*s->slots));
    s->free_stack = malloc(n * sizeof(*s->free_stack));
    if (!s->slots || !s->free_stack) {
        free(s->slots);
        free(s->free_stack);
        free(s);
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < n; i++)
        s->free_stack[i] = (uint32_t)(n - 1 - i);
    s->nfree = (uint32_t)n;
    s->L = L;
    s->capacity = capacity;
    s->nslots = (uint32_t)n;
    *out = s;
    return 0;
}

static void slot_free(struct vsw_slot *slot)
{
    if (slot)
        free(slot->mem);
}

void vsw_store_destroy(struct vsw_store *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->nslots; i++)
        slot_free(s->slots[i]);
    free(s->slots);
    free(s->free_stack);
    free(s);
}

int64_t vsw_store_slot_bytes(const struct vsw_store *s) { return s ? (int64_t)slot_bytes(s->L) : -EINVAL; }
int vsw_store_capacity_slots(const struct vsw_store *s) { return s ? (int)s->nslots : -EINVAL; }
int vsw_store_used_slots(const struct vsw_store *s) { return s ? (int)s->used : -EINVAL; }

void vsw_slot_write_shadow(const struct vsw_layout_def *L, struct vsw_slot *slot, const uint8_t *regs, uint32_t mask)
{
    for (uint32_t g = 0; g < L->ngroups; g++) {
        if (!(mask & (1u << g)))
            continue;
        uint32_t shadow = !((slot->bank_mask >> g) & 1);
        vsw_copy_groups(slot->bank[shadow], regs, L->groups, g, g, slot->sum[shadow]);
    }
}

/* Assembles the committed context of a slot into regs. */
static void read_committed(const struct vsw_layout_def *L, const struct vsw_slot *slot, uint8_t *regs)
{
    for (uint32_t g = 0; g < L->ngroups; g++) {
        const struct vsw_group_info *gi = &L->groups[g];
        memcpy(regs + gi->offset, slot->bank[(slot->bank_mask >> g) & 1] + gi->offset, gi->size);
    }
}

void vsw_slot_commit(struct vsw_slot *slot, uint32_t mask)
{
    if (!mask)
        return;
    __atomic_store_n(&slot->bank_mask, slot->bank_mask ^ mask, __ATOMIC_RELEASE);
    slot->generation++;
    slot->changed |= mask;
}

int vsw_slot_read_checked(const struct vsw_layout_def *L, const struct vsw_slot *slot, uint8_t *regs, uint32_t mask)
{
    for (uint32_t g = 0; g < L->ngroups; g++) {
        if (!(mask & (1u << g)))
            continue;
        uint32_t b = (slot->bank_mask >> g) & 1;
        struct vsw_fold got = vsw_copy_run(regs, slot->bank[b], L->groups, g, g, NULL);
        if (!vsw_fold_equal(got, vsw_fold_load(&slot->sum[b][g])))
            return -EBADMSG;
    }
    return 0;
}

int vsw_store_alloc(struct vsw_store *s, uint64_t owner)
{
    if (!s || owner == 0)
        return -EINVAL;
    const struct vsw_layout_def *L = s->L;
    if (!s->nfree)
        return -ENOSPC;
    uint32_t free_slot = s->free_stack[s->nfree - 1];
    size_t bank = round_up(L->size), sums = round_up(2 * L->ngroups * sizeof(struct vsw_check));
    uint8_t *mem = aligned_alloc(VSW_ALIGN, 2 * bank + sums + round_up(sizeof(struct vsw_slot)));
    if (!mem)
        return -ENOMEM;
    struct vsw_slot *slot = (struct vsw_slot *)(mem + 2 * bank + sums);
    *slot = (struct vsw_slot){.owner = owner, .valid_mask = vsw_layout_all(L), .mem = mem};
    slot->bank[0] = mem;
    slot->bank[1] = mem + bank;
    slot->sum[0] = (struct vsw_check *)(mem + 2 * bank);
    slot->sum[1] = slot->sum[0] + L->ngroups;
    memset(mem, 0, 2 * bank + sums);
    /* reset state into bank 1, then committed into bank 0 with its checks */
    L->reset(slot->bank[1]);
    slot->bank_mask = vsw_layout_all(L);
    vsw_slot_write_shadow(L, slot, slot->bank[1], vsw_layout_all(L));
    slot->bank_mask = 0;
    memset(slot->bank[1], 0, bank);
    s->slots[free_slot] = slot;
    s->nfree--;
    s->used++;
    return (int)free_slot;
}

/* A slot by number, whoever owns it: -EINVAL, -ERANGE, -ENOENT. */
static int lookup(const struct vsw_store *s, uint32_t slot, struct vsw_slot **out)
{
    if (!s)
        return -EINVAL;
    if (slot >= s->nslots)
        return -ERANGE;
    *out = s->slots[slot];
    return *out ? 0 : -ENOENT;
}

int vsw_store_slot(const struct vsw_store *s, uint32_t slot, uint64_t owner, struct vsw_slot **out)
{
    int r = lookup(s, slot, out);
    if (r == 0 && (*out)->owner != owner)
        r = -EACCES;
    return r;
}

/* Moves a slot from SAVED to `to`; waits out an accessor (it copies at most one
 * context and leaves), -EBUSY while it is loaded on a PCPU. */
static int claim_as(struct vsw_slot *slot, uint32_t to)
{
    for (;;) {
        uint32_t seen = VSW_SLOT_SAVED;
        if (__atomic_compare_exchange_n(&slot->resident, &seen, to, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return 0;
        if (vsw_slot_on_pcpu(seen))
            return -EBUSY;
        vsw_cpu_relax();
    }
}

int vsw_store_hold(struct vsw_slot *slot) { return claim_as(slot, VSW_SLOT_HELD); }

int vsw_store_claim(struct vsw_store *s, struct vsw_slot *slot)
{
    (void)s;
    return claim_as(slot, VSW_SLOT_LOADING);
}

void vsw_store_release(struct vsw_store *s, struct vsw_slot *slot)
{
    (void)s;
    __atomic_store_n(&slot->resident, VSW_SLOT_SAVED, __ATOMIC_RELEASE);
}

int vsw_store_free(struct vsw_store *s, uint32_t slot, uint64_t owner)
{
    struct vsw_slot *sl;
    int r = vsw_store_slot(s, slot, owner, &sl);
    if (r < 0)
        return r;
    if (claim_as(sl, VSW_SLOT_HELD) < 0)
        return -EBUSY;
    s->slots[slot] = NULL;
    s->free_stack[s->nfree++] = slot;
    s->used--;
    slot_free(sl);
    return 0;
}

int vsw_store_slot_info(const struct vsw_store *s, uint32_t slot, uint64_t owner, struct vsw_slot_info *out)
{
    struct vsw_slot *sl;
    int r = vsw_store_slot(s, slot, owner, &sl);
    if (r < 0)
        return r;
    if (!out)
        return -EINVAL;
    *out = (struct vsw_slot_info){sl->owner, sl->generation, sl->valid_mask, sl->bank_mask,
                                  vsw_slot_on_pcpu(__atomic_load_n(&sl->resident, __ATOMIC_ACQUIRE))};
    return 0;
}

/* Holds a saved (not loaded) slot for a read or a write from outside the switch
 * path; a switch that wants it meanwhile waits for the copy, it is not refused. */
static int claim_saved(struct vsw_store *s, uint32_t slot, uint64_t owner, struct vsw_slot **out)
{
    (void)s;
    int r = vsw_store_slot(s, slot, owner, out);
    if (r < 0)
        return r;
    return claim_as(*out, VSW_SLOT_HELD);
}

int vsw_store_read(const struct vsw_store *s, uint32_t slot, uint64_t owner, uint32_t offset, void *buf,
                   uint32_t len)
{
    struct vsw_slot *sl;
    if (s && (!buf || len == 0 || offset > s->L->size || len > s->L->size - offset))
        return -EINVAL;
    int r = claim_saved((struct vsw_store *)s, slot, owner, &sl);
    if (r < 0)
        return r;
    const struct vsw_layout_def *L = s->L;
    for (uint32_t g = 0; g < L->ngroups; g++) {
        const struct vsw_group_info *gi = &L->groups[g];
        uint32_t lo = offset > gi->offset ? offset : gi->offset;
        uint32_t hi = offset + len < gi->offset + gi->size ? offset + len : gi->offset + gi->size;
        if (lo < hi)
            memcpy((uint8_t *)buf + (lo - offset), sl->bank[(sl->bank_mask >> g) & 1] + lo, hi - lo);
    }
    vsw_store_release((struct vsw_store *)s, sl);
    return (int)len;
}

int vsw_store_write(struct vsw_store *s, uint32_t slot, uint64_t owner, uint32_t offset, const void *buf,
                    uint32_t len)
{
    struct vsw_slot *sl;
    if (s && (!buf || len == 0 || offset > s->L->size || len > s->L->size - offset))
        return -EINVAL;
    int r = claim_saved(s, slot, owner, &sl);
    if (r < 0)
        return r;
    const struct vsw_layout_def *L = s->L;
    uint32_t mask = vsw_group_mask_of(L, offset, len);
    /* each touched group: committed bytes -> shadow, overlay, check; then one commit */
    for (uint32_t g = 0; g < L->ngroups; g++) {
        if (!(mask & (1u << g)))
            continue;
        const struct vsw_group_info *gi = &L->groups[g];
        uint32_t cur = (sl->bank_mask >> g) & 1;
        uint8_t *shadow = sl->bank[!cur];
        memcpy(shadow + gi->offset, sl->bank[cur] + gi->offset, gi->size);
        uint32_t lo = offset > gi->offset ? offset : gi->offset;
        uint32_t hi = offset + len < gi->offset + gi->size ? offset + len : gi->offset + gi->size;
        memcpy(shadow + lo, (const uint8_t *)buf + (lo - offset), hi - lo);
        vsw_copy_groups(shadow, shadow, L->groups, g, g, sl->sum[!cur]);
    }
    vsw_slot_commit(sl, mask);
    vsw_store_release(s, sl);
    return (int)len;
}

int vsw_store_export(const struct vsw_store *s, uint32_t slot, uint64_t owner, void *out, size_t len)
{
    struct vsw_slot *sl;
    if (s && !out)
        return -EINVAL;
    if (s && len < VSW_IMAGE_HEADER_SIZE + (size_t)s->L->size)
        return -ENOBUFS;
    int r = claim_saved((struct vsw_store *)s, slot, owner, &sl);
    if (r < 0)
        return r;
    uint8_t *img = out;
    vsw_image_header(s->L, img, sl->valid_mask, sl->generation, sl->owner);
    read_committed(s->L, sl, img + VSW_IMAGE_HEADER_SIZE);
    vsw_image_seal(img, s->L->size);
    vsw_store_release((struct vsw_store *)s, sl);
    return (int)(VSW_IMAGE_HEADER_SIZE + s->L->size);
}

int vsw_store_import(struct vsw_store *s, uint32_t slot, uint64_t owner, const void *img, size_t len,
                     struct vsw_image_info *info)
{
    struct vsw_slot *sl;
    struct vsw_image_info local;
    if (!s)
        return -EINVAL;
    if (!info)
        info = &local;
    int r = vsw_image_check(s->L, img, len, info);
    if (r < 0)
        return r;
    const struct vsw_layout_def *L = s->L;
    /* groups the image does not hold come back in their reset state */
    uint8_t *ctx = aligned_alloc(VSW_ALIGN, round_up(L->size));
    if (!ctx)
        return -ENOMEM;
    const uint8_t *payload = (const uint8_t *)img + VSW_IMAGE_HEADER_SIZE;
    uint32_t valid = info->valid_mask;
    memset(ctx, 0, L->size);
    L->reset(ctx);
    for (uint32_t g = 0; g < L->ngroups; g++)
        if (valid & (1u << g))
            memcpy(ctx + L->groups[g].offset, payload + L->groups[g].offset, L->groups[g].size);
    r = claim_saved(s, slot, owner, &sl);
    if (r == 0) {
        vsw_slot_write_shadow(L, sl, ctx, vsw_layout_all(L));
        vsw_slot_commit(sl, vsw_layout_all(L));
        vsw_store_release(s, sl);
        r = (int)len;
    }
    free(ctx);
    return r;
}

int vsw_store_corrupt(struct vsw_store *s, uint32_t slot, uint32_t group, uint32_t byte)
{
    struct vsw_slot *sl;
    int r = lookup(s, slot, &sl);
    if (r < 0)
        return r;
    if (group >= s->L->ngroups || byte >= s->L->groups[group].size)
        return -ERANGE;
    sl->bank[(sl->bank_mask >> group) & 1][s->L->groups[group].offset + byte] ^= 0x5a;
    return 0;
}
