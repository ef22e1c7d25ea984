/* A compute-only guest that never finishes: it reports its progress (one
 * device write per 2^18 iterations) and otherwise only computes, so only the
 * timer can take the vCPU from it. */
#include <vsw_guest.h>

int main(void)
{
    volatile uint64_t x = 1;
    for (uint32_t n = 0;; n++) {
        for (int i = 0; i < (1 << 18); i++)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        *(volatile uint32_t *)(uintptr_t)(VSW_MMIO + VSW_REG_PROGRESS) = n;
    }
}
