/*
 * pcpu.c - the physical CPU model: a register file in its layout, the machine
 * running on it, and which groups were written since that machine was loaded
 * (like XSAVEOPT's modified tracking: only those need saving).
 * An idle PCPU's register file is zero, so no machine's state lingers in it.
 */
#include "vsw_internal.h"
#include "image.h"
#include <stdlib.h>
#include <string.h>

int vsw_workload_bind(struct vsw_pcpu *p);

int vsw_pcpu_configure(struct vsw_pcpu *p, uint32_t cpu_mhz, uint32_t exit_entry_cycles)
{
    if (!p || cpu_mhz == 0)
        return -EINVAL;
    p->cpu_mhz = cpu_mhz;
    p->exit_entry_cycles = exit_entry_cycles;
    p->half_exit_entry_ps = (uint64_t)exit_entry_cycles * VSW_PS_PER_US / cpu_mhz / 2;
    return 0;
}

int vsw_pcpu_create(const struct vsw_pcpu_params *params, struct vsw_pcpu **out)
{
    if (!params || !out || params->cpu_mhz == 0)
        return -EINVAL;
    const struct vsw_layout_def *L = vsw_layout_get(params->layout);
    if (!L)
        return -ENOENT;
    struct vsw_pcpu *p = aligned_alloc(VSW_ALIGN, sizeof(*p));
    if (!p)
        return -ENOMEM;
    memset(p, 0, sizeof(*p));
    /* PCPUs allocated one after another get different shards (a collision
     * would only make them share a line, never miscount) */
    p->bus_shard = (uint32_t)(((uintptr_t)p / VSW_ALIGN * 0x9e3779b97f4a7c15ull) >> 58);
    size_t bytes = (L->size + VSW_ALIGN - 1) / VSW_ALIGN * VSW_ALIGN;
    p->regs = aligned_alloc(VSW_ALIGN, bytes);
    if (!p->regs) {
        free(p);
        return -ENOMEM;
    }
    memset(p->regs, 0, bytes);
    p->L = L;
    vsw_pcpu_configure(p, params->cpu_mhz, params->exit_entry_cycles);
    int r = vsw_workload_bind(p);
    if (r < 0) {
        vsw_pcpu_destroy(p);
        return r;
    }
    *out = p;
    return 0;
}

void vsw_pcpu_destroy(struct vsw_pcpu *p)
{
    if (p) {
        free(p->regs);
        free(p);
    }
}

int vsw_pcpu_state(const struct vsw_pcpu *p, struct vsw_pcpu_state *out)
{
    if (!p || !out)
        return -EINVAL;
    *out = (struct vsw_pcpu_state){p->owner, p->slot, p->dirty, p->now_ps, p->switches, p->epoch};
    return 0;
}

void *vsw_pcpu_regs(struct vsw_pcpu *p) { return p ? p->regs : NULL; }

/* Enters for an access to machine `owner` (0: whichever runs): -ESRCH, not entered, otherwise. */
static int enter_owner(struct vsw_pcpu *p, uint64_t owner)
{
    int r = vsw_pcpu_enter_running(p);
    if (r == 0 && owner && p->owner != owner) {
        vsw_pcpu_leave(p);
        r = -ESRCH;
    }
    return r;
}

static bool in_file(const struct vsw_pcpu *p, uint32_t offset, uint32_t len)
{
    return len != 0 && offset <= p->L->size && len <= p->L->size - offset;
}

int vsw_pcpu_read(struct vsw_pcpu *p, uint64_t owner, uint32_t offset, void *buf, uint32_t len)
{
    if (!p || !buf || !in_file(p, offset, len))
        return -EINVAL;
    int r = enter_owner(p, owner);
    if (r < 0)
        return r;
    memcpy(buf, p->regs + offset, len);
    vsw_pcpu_leave(p);
    return (int)len;
}

int vsw_pcpu_write(struct vsw_pcpu *p, uint64_t owner, uint32_t offset, const void *buf, uint32_t len)
{
    if (!p || !buf || !in_file(p, offset, len))
        return -EINVAL;
    int r = enter_owner(p, owner);
    if (r < 0)
        return r;
    memcpy(p->regs + offset, buf, len);
    p->dirty |= vsw_group_mask_of(p->L, offset, len);
    vsw_pcpu_leave(p);
    return (int)len;
}

int vsw_pcpu_mark_dirty(struct vsw_pcpu *p, uint32_t mask)
{
    if (!p || (mask & ~vsw_layout_all(p->L)))
        return -EINVAL;
    if (!p->owner)
        return -ESRCH;
    __atomic_fetch_or(&p->dirty, mask, __ATOMIC_RELAXED);
    return 0;
}

int vsw_pcpu_set_trace(struct vsw_pcpu *p, struct vsw_trace *t)
{
    if (!p)
        return -EINVAL;
    int r = vsw_pcpu_enter(p);
    if (r < 0)
        return r;
    p->trace = t;
    vsw_pcpu_leave(p);
    return 0;
}

int vsw_pcpu_export(struct vsw_pcpu *p, uint64_t owner, uint64_t generation, void *out, size_t len)
{
    if (!p || !out)
        return -EINVAL;
    if (len < VSW_IMAGE_HEADER_SIZE + (size_t)p->L->size)
        return -ENOBUFS;
    int r = enter_owner(p, owner);
    if (r < 0)
        return r;
    uint8_t *img = out;
    vsw_image_header(p->L, img, vsw_layout_all(p->L), generation, p->owner);
    memcpy(img + VSW_IMAGE_HEADER_SIZE, p->regs, p->L->size);
    vsw_pcpu_leave(p);
    vsw_image_seal(img, p->L->size);
    return (int)(VSW_IMAGE_HEADER_SIZE + p->L->size);
}
