/* Auto-vectorised loops: built with -O3 -march=native, gcc picks the widest
 * vectors the host has (AVX2 or AVX-512) on its own. */
#include <vsw_guest.h>

#define N 4096
static float a[N], b[N], c[N];
static int32_t x[N], y[N];

int main(void)
{
    for (int i = 0; i < N; i++) {
        a[i] = (float)i * 0.5f;
        b[i] = (float)(N - i) * 0.25f;
        x[i] = i * 2654435761u;
        y[i] = i ^ 0x5a5a;
    }
    for (int r = 0; r < 3000; r++)
        for (int i = 0; i < N; i++) {
            c[i] = a[i] * 0.999f + b[i] * 0.001f + c[i] * 0.5f;
            x[i] = (x[i] ^ y[i]) + (x[i] >> 3);
        }
    uint64_t h = 0;
    for (int i = 0; i < N; i++) {
        union { float f; uint32_t u; } u = {c[i]};
        h = (h ^ u.u ^ (uint32_t)x[i]) * 0x100000001b3ull;
    }
    vsw_printf("autovec %016llx\n", (unsigned long long)h);
    return 0;
}
