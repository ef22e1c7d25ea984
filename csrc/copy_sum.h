/*
 * copy_sum.h - the mover's data path: copy a run of groups and fold their
 * 64-bit words into a position-keyed additive check on the way, so a load
 * verifies what it moves at close to memcpy speed (a CRC's serial dependency
 * chain could not keep up):
 *     lane l = sum of w_i ^ (i * KEY) over words i = l (mod 8) of the group,
 * i counted from the start of the register file.  Any single changed word
 * changes its lane; the key makes moved or swapped words show too.
 * Because it is a sum keyed by absolute position, a run's check is the sum of
 * its groups' checks: a save records each group's (the run's running total at
 * each boundary), a load compares one total per run.  Groups span multiples
 * of 64 bytes, so there are no tails.  Inlined into the hot loops, which are
 * cloned per vector ISA (VSW_VECTOR_CLONES).
 */
#ifndef VSW_COPY_SUM_H
#define VSW_COPY_SUM_H
#include "vsw_internal.h"

#define VSW_SUM_KEY 0x9e3779b97f4a7c15ull

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define VSW_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef VSW_VECTOR_CLONES
#define VSW_VECTOR_CLONES
#endif

/* Two vectors of 4 x 64-bit lanes: native on AVX2, halves on SSE2 (GCC handles
 * wider generic vectors badly without AVX-512).  Vector types never cross a
 * function boundary: their ABI differs per ISA. */
typedef uint64_t vsw_v4 __attribute__((vector_size(32)));
typedef uint64_t vsw_v4u __attribute__((vector_size(32), aligned(8), may_alias));

struct vsw_fold {
    vsw_v4 lo, hi; /* lanes 0-3 and 4-7 */
};

static inline __attribute__((always_inline)) struct vsw_fold vsw_fold_zero(void)
{
    return (struct vsw_fold){{0, 0, 0, 0}, {0, 0, 0, 0}};
}

static inline __attribute__((always_inline)) struct vsw_fold vsw_fold_load(const struct vsw_check *c)
{
    return (struct vsw_fold){*(const vsw_v4u *)c->lane, *(const vsw_v4u *)(c->lane + 4)};
}

static inline __attribute__((always_inline)) void vsw_fold_store(struct vsw_check *c, struct vsw_fold f)
{
    *(vsw_v4u *)c->lane = f.lo;
    *(vsw_v4u *)(c->lane + 4) = f.hi;
}

static inline __attribute__((always_inline)) bool vsw_fold_equal(struct vsw_fold a, struct vsw_fold b)
{
    vsw_v4 z = (a.lo ^ b.lo) | (a.hi ^ b.hi);
    return (z[0] | z[1] | z[2] | z[3]) == 0;
}

/* Copies groups first..last, adjacent in the layout, from src to dst (both
 * indexed from the start of the register file) and returns their fold; with
 * rec, also records each group's own check in rec[g]. */
static inline __attribute__((always_inline)) struct vsw_fold
vsw_copy_run(uint8_t *dst, const uint8_t *src, const struct vsw_group_info *groups, uint32_t first,
             uint32_t last, struct vsw_check *rec)
{
    const uint64_t K = VSW_SUM_KEY;
    uint32_t i = groups[first].offset / 8, end = (groups[last].offset + groups[last].size) / 8;
    uint64_t k0 = (uint64_t)i * K;
    vsw_v4 b0 = {0}, b1 = {0}, p0 = {0}, p1 = {0};
    vsw_v4 k = {k0, k0 + K, k0 + 2 * K, k0 + 3 * K}, k1 = k + 4 * K;
    const vsw_v4 step = {8 * K, 8 * K, 8 * K, 8 * K};
    uint64_t *d = (uint64_t *)dst;
    const uint64_t *s = (const uint64_t *)src;
    for (uint32_t g = first; g <= last; g++) {
        uint32_t gend = rec ? (groups[g].offset + groups[g].size) / 8 : end;
        for (; i < gend; i += 8) {
            vsw_v4 w0 = *(const vsw_v4u *)(s + i), w1 = *(const vsw_v4u *)(s + i + 4);
            *(vsw_v4u *)(d + i) = w0;
            *(vsw_v4u *)(d + i + 4) = w1;
            b0 += w0 ^ k;
            b1 += w1 ^ k1;
            k += step;
            k1 += step;
        }
        if (!rec)
            break;
        vsw_fold_store(&rec[g], (struct vsw_fold){b0 - p0, b1 - p1});
        p0 = b0;
        p1 = b1;
    }
    return (struct vsw_fold){b0, b1};
}
#endif
