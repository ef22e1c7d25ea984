/* A guest that only computes, forever: no device access at all, so only the
 * timer ends its slices (and nothing hands the C slice loop back to Python). */
#include <vsw_guest.h>

int main(void)
{
    volatile uint64_t x = 1;
    for (;;)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
}
