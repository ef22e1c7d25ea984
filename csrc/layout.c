/* layout.c - the registry of register-context layouts and its queries. */
#include "vsw_internal.h"
#include <string.h>

static const struct vsw_layout_def *const layouts[] = {&vsw_layout_def_x86_64, &vsw_layout_def_aarch64};

const struct vsw_layout_def *vsw_layout_get(uint32_t id)
{
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
        if (layouts[i]->id == id)
            return layouts[i];
    return NULL;
}

int vsw_layout_by_name(const char *name)
{
    if (!name)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
        if (!strcmp(layouts[i]->name, name))
            return (int)layouts[i]->id;
    return -ENOENT;
}

int vsw_layout_info(uint32_t layout, struct vsw_layout_info *out)
{
    const struct vsw_layout_def *l = vsw_layout_get(layout);
    if (!l)
        return -ENOENT;
    if (!out)
        return -EINVAL;
    *out = (struct vsw_layout_info){l->name, l->id, l->version, l->size, l->ngroups, l->nfields,
                                    l->uapi_checked};
    return 0;
}

int vsw_layout_group(uint32_t layout, uint32_t index, struct vsw_group_info *out)
{
    const struct vsw_layout_def *l = vsw_layout_get(layout);
    if (!l)
        return -ENOENT;
    if (index >= l->ngroups)
        return -ERANGE;
    if (!out)
        return -EINVAL;
    *out = l->groups[index];
    return 0;
}

int vsw_layout_field(uint32_t layout, uint32_t index, struct vsw_field_info *out)
{
    const struct vsw_layout_def *l = vsw_layout_get(layout);
    if (!l)
        return -ENOENT;
    if (index >= l->nfields)
        return -ERANGE;
    if (!out)
        return -EINVAL;
    *out = l->fields[index];
    return 0;
}

int vsw_layout_field_index(const struct vsw_layout_def *l, const char *name)
{
    for (uint32_t i = 0; i < l->nfields; i++)
        if (!strcmp(l->fields[i].name, name))
            return (int)i;
    return -ENOENT;
}

int vsw_layout_reset(uint32_t layout, void *buf, size_t len)
{
    const struct vsw_layout_def *l = vsw_layout_get(layout);
    if (!l)
        return -ENOENT;
    if (!buf || len != l->size)
        return -EINVAL;
    memset(buf, 0, len);
    l->reset(buf);
    return 0;
}

/* Groups touched by the byte range [offset, offset + len). */
uint32_t vsw_group_mask_of(const struct vsw_layout_def *L, uint32_t offset, uint32_t len)
{
    uint32_t mask = 0;
    for (uint32_t g = 0; g < L->ngroups; g++) {
        const struct vsw_group_info *gi = &L->groups[g];
        if (offset < gi->offset + gi->size && gi->offset < offset + len)
            mask |= 1u << g;
    }
    return mask;
}
