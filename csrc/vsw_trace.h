/* vsw_trace.h - the trace ring (trace.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_TRACE_H
#define VSW_ABI_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include "vsw_bus.h"

/* CDEF-BEGIN */
enum vsw_trace_kind { VSW_TRACE_SWITCH = 0, VSW_TRACE_EXIT_ENTRY = 1, VSW_TRACE_BURST = 2 };

/* ---- trace ring ---- */
struct vsw_trace_record {
    uint64_t seq;           /* switch number */
    uint64_t start_ps;
    uint64_t end_ps;
    uint64_t from_owner;
    uint64_t to_owner;
    uint32_t bytes;
    uint32_t count;         /* transactions this record stands for */
    uint8_t kind;           /* enum vsw_trace_kind */
    uint8_t bus;            /* enum vsw_bus_kind */
    uint8_t dir;            /* enum vsw_dir */
    uint8_t group;          /* first layout group the record covers */
    uint32_t reserved;
};
struct vsw_trace;
int vsw_trace_create(uint32_t capacity, struct vsw_trace **out);
void vsw_trace_destroy(struct vsw_trace *t);
/* Copies up to max records, oldest first; returns the number copied. */
int vsw_trace_read(const struct vsw_trace *t, struct vsw_trace_record *out, uint32_t max);
int vsw_trace_clear(struct vsw_trace *t);
/* Records lost to wrap-around since the last clear. */
int64_t vsw_trace_dropped(const struct vsw_trace *t);
/* CDEF-END */

#endif
