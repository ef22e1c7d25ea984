/*
 * xsave.c - the XSAVE area as the host lays it out, and as the layout keeps it.
 *
 * The x86_64 layout keeps each XSAVE state component at its canonical place
 * (the standard-format offsets of the Intel SDM), so a context image means the
 * same bytes on every host.  A host lays the area out its own way: CPUID leaf
 * 0xD sub-leaf i gives component i's size (EAX) and offset (EBX) - on AMD Zen
 * with AVX-512, for instance, opmask sits at 832, not 1088, and there is no
 * MPX - and KVM's XSAVE buffer uses the host's offsets.  pull and push
 * translate component by component; a component the host lacks is absent:
 * zero in the layout after a pull, and a context that uses it (its XSTATE_BV
 * bit set) is refused by push (-EOPNOTSUPP), never aliased onto other bytes.
 */
#include "vsw_internal.h"
#include <string.h>

/* Component -> its canonical offset in the layout's XSAVE region (0: not kept). */
static const uint32_t canonical_offset[VSW_XSAVE_COMPONENTS] = {
    [2] = 576,      /* AVX: YMM_Hi128 */
    [3] = 960,      /* MPX: BNDREGS */
    [4] = 1024,     /* MPX: BNDCSR */
    [5] = 1088,     /* AVX-512: opmask */
    [6] = 1152,     /* AVX-512: ZMM_Hi256 */
    [7] = 1664,     /* AVX-512: Hi16_ZMM */
    [9] = 2688,     /* PKRU */
};
static const uint32_t canonical_size[VSW_XSAVE_COMPONENTS] = {
    [2] = 256, [3] = 64, [4] = 64, [5] = 64, [6] = 512, [7] = 1024, [9] = 8,
};
enum { LEGACY = 512, HEADER = 64, XSTATE_BV = 512, XCOMP_BV = 520 };

uint64_t vsw_xsave_known(void)
{
    uint64_t m = 0x3;           /* x87, SSE: the legacy region */
    for (int i = 2; i < VSW_XSAVE_COMPONENTS; i++)
        if (canonical_size[i])
            m |= 1ull << i;
    return m;
}

int vsw_xsave_map_check(const struct vsw_xsave_map *m)
{
    if (!m || m->size < LEGACY + HEADER)
        return -EINVAL;
    for (int i = 2; i < VSW_XSAVE_COMPONENTS; i++) {
        if (!(m->xcr0 >> i & 1))
            continue;
        if (!canonical_size[i] || m->csize[i] != canonical_size[i])
            return -EPROTO;     /* a component the layout does not keep, or of another size */
        if (m->offset[i] < LEGACY + HEADER || m->offset[i] + m->csize[i] > m->size)
            return -ERANGE;
    }
    return 0;
}

int vsw_xsave_pull(const struct vsw_xsave_map *m, const void *host, size_t host_len, void *canon)
{
    int r = vsw_xsave_map_check(m);
    if (r < 0)
        return r;
    if (!host || !canon || host_len < m->size)
        return -EINVAL;
    const uint8_t *h = host;
    uint8_t *c = canon;
    memcpy(c, h, LEGACY + HEADER);
    uint64_t bv;
    memcpy(&bv, c + XSTATE_BV, 8);
    bv &= m->xcr0 & vsw_xsave_known();
    memcpy(c + XSTATE_BV, &bv, 8);
    for (int i = 2; i < VSW_XSAVE_COMPONENTS; i++) {
        if (!canonical_size[i])
            continue;
        if (m->xcr0 >> i & 1)
            memcpy(c + canonical_offset[i], h + m->offset[i], canonical_size[i]);
        else
            memset(c + canonical_offset[i], 0, canonical_size[i]);
    }
    return 0;
}

int vsw_xsave_push(const struct vsw_xsave_map *m, const void *canon, void *host, size_t host_len)
{
    int r = vsw_xsave_map_check(m);
    if (r < 0)
        return r;
    if (!host || !canon || host_len < m->size)
        return -EINVAL;
    const uint8_t *c = canon;
    uint8_t *h = host;
    uint64_t bv;
    memcpy(&bv, c + XSTATE_BV, 8);
    if (bv & ~m->xcr0)
        return -EOPNOTSUPP;     /* the context uses a component this host does not have */
    memcpy(h, c, LEGACY + HEADER);
    memset(h + XCOMP_BV, 0, 8); /* KVM's buffer is the standard format */
    for (int i = 2; i < VSW_XSAVE_COMPONENTS; i++)
        if (canonical_size[i] && (m->xcr0 >> i & 1))
            memcpy(h + m->offset[i], c + canonical_offset[i], canonical_size[i]);
    return 0;
}
