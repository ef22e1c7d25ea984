/* The virtual clock: it advances only while this guest runs.  Prints how much
 * of it a fixed amount of work took (so its output differs from run to run:
 * `pyvswitch run --check-solo` must say so). */
#include <vsw_guest.h>

int main(void)
{
    unsigned long long t0 = vsw_clock_ns(), t1;
    volatile uint64_t x = 1;
    for (long i = 0; i < 20000000; i++)
        x = x * 6364136223846793005ull + 1;
    t1 = vsw_clock_ns();
    vsw_printf("work took %llu ns of my own time\n", t1 - t0);
    return t1 > t0 ? 0 : 1;
}
