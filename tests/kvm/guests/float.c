/* Floating point: a series summed in x87 long double (80-bit) and in SSE
 * double, then a few hundred Newton iterations - the x87 stack and control
 * word, the SSE registers and MXCSR.  Results printed as their bits. */
#include <vsw_guest.h>

int main(void)
{
    long double lsum = 0.0L, lx = 1.0L;
    double dsum = 0.0, dprod = 1.0;
    for (long k = 1; k <= 400000; k++) {
        lsum += 1.0L / ((long double)k * (long double)k);
        dsum += 1.0 / ((double)k * (double)k + 0.5);
        dprod *= 1.0 + 1e-7 / (double)k;
    }
    for (int i = 0; i < 300; i++)               /* Newton: sqrt(2) in long double */
        lx = (lx + 2.0L / lx) / 2.0L;
    union { long double v; struct { uint64_t m; uint16_t e; } b; } L = {lsum}, X = {lx};
    union { double v; uint64_t b; } D = {dsum}, P = {dprod};
    vsw_printf("x87 sum %04x:%016llx sqrt2 %04x:%016llx\n", L.b.e, (unsigned long long)L.b.m, X.b.e,
               (unsigned long long)X.b.m);
    vsw_printf("sse sum %016llx prod %016llx\n", (unsigned long long)D.b, (unsigned long long)P.b);
    return 0;
}
