/* Integer work: sort 200,000 generated keys (quicksort, then a check), hash
 * them (FNV-1a) and count distinct values - the heap, the stack, branches. */
#include <vsw_guest.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static void sort(uint32_t *a, long lo, long hi)
{
    while (lo < hi) {
        uint32_t p = a[(lo + hi) / 2];
        long i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) { uint32_t t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (j - lo < hi - i) { sort(a, lo, j); lo = i; } else { sort(a, i, hi); hi = j; }
    }
}

int main(void)
{
    enum { N = 200000 };
    uint32_t *a = malloc(N * sizeof(*a));
    if (!a) { vsw_printf("no memory\n"); return 1; }
    for (long i = 0; i < N; i++)
        a[i] = (uint32_t)next() % 1000003u;
    sort(a, 0, N - 1);
    uint64_t h = 0xcbf29ce484222325ull;
    long distinct = 0;
    for (long i = 0; i < N; i++) {
        if (i && a[i - 1] > a[i]) { vsw_printf("not sorted at %ld\n", i); return 2; }
        distinct += !i || a[i] != a[i - 1];
        for (int b = 0; b < 4; b++) { h ^= (a[i] >> (8 * b)) & 0xff; h *= 0x100000001b3ull; }
    }
    vsw_printf("sorted %d keys, %ld distinct, min %u max %u, fnv %016llx\n", N, distinct, a[0], a[N - 1],
               (unsigned long long)h);
    free(a);
    return (int)(h & 0x7f);
}
