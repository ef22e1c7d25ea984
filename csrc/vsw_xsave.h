/* vsw_xsave.h - the XSAVE area as a host lays it out (xsave.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_XSAVE_H
#define VSW_ABI_XSAVE_H

#include <stddef.h>
#include <stdint.h>

/* CDEF-BEGIN */
/* ---- the XSAVE area as a host lays it out (xsave.c) ----
 * The layout keeps each state component at its canonical (standard-format)
 * offset; a host's offsets come from CPUID leaf 0xD.  A map says, per
 * component i, where the host puts it; bit i of xcr0 says it has it. */
#define VSW_XSAVE_COMPONENTS 10
struct vsw_xsave_map {
    uint64_t xcr0;                              /* components the host has (x87 and SSE always) */
    uint32_t size;                              /* bytes of the host's standard-format area */
    uint32_t offset[VSW_XSAVE_COMPONENTS];      /* CPUID.(0xD, i).EBX */
    uint32_t csize[VSW_XSAVE_COMPONENTS];       /* CPUID.(0xD, i).EAX */
};
/* The components the layout keeps (a mask of XCR0 bits). */
uint64_t vsw_xsave_known(void);
/* -EPROTO: a component the layout does not keep, or of another size; -ERANGE: outside the area. */
int vsw_xsave_map_check(const struct vsw_xsave_map *m);
/* Host area -> the layout's XSAVE region (absent components zeroed, XSTATE_BV limited to what exists). */
int vsw_xsave_pull(const struct vsw_xsave_map *m, const void *host, size_t host_len, void *canon);
/* The layout's XSAVE region -> host area; -EOPNOTSUPP (nothing written) when the
 * context uses a component the host does not have. */
int vsw_xsave_push(const struct vsw_xsave_map *m, const void *canon, void *host, size_t host_len);
/* CDEF-END */

#endif
