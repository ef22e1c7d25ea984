/* trace.c - a fixed ring of bus transactions; the oldest records give way. */
#include "vsw_internal.h"
#include <stdlib.h>

int vsw_trace_create(uint32_t capacity, struct vsw_trace **out)
{
    if (!out || capacity == 0)
        return -EINVAL;
    struct vsw_trace *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->rec = calloc(capacity, sizeof(*t->rec));
    if (!t->rec) {
        free(t);
        return -ENOMEM;
    }
    t->capacity = capacity;
    *out = t;
    return 0;
}

void vsw_trace_destroy(struct vsw_trace *t)
{
    if (t) {
        free(t->rec);
        free(t);
    }
}

void vsw_trace_put(struct vsw_trace *t, const struct vsw_trace_record *r)
{
    if (t->head >= t->capacity)
        t->dropped++;
    t->rec[t->head++ % t->capacity] = *r;
}

int vsw_trace_read(const struct vsw_trace *t, struct vsw_trace_record *out, uint32_t max)
{
    if (!t || (!out && max))
        return -EINVAL;
    uint64_t n = t->head < t->capacity ? t->head : t->capacity;
    uint64_t first = t->head - n;
    if (n > max)
        n = max;
    for (uint64_t i = 0; i < n; i++)
        out[i] = t->rec[(first + i) % t->capacity];
    return (int)n;
}

int vsw_trace_clear(struct vsw_trace *t)
{
    if (!t)
        return -EINVAL;
    t->head = 0;
    t->dropped = 0;
    return 0;
}

int64_t vsw_trace_dropped(const struct vsw_trace *t) { return t ? (int64_t)t->dropped : -EINVAL; }
