/* A well-behaved guest that writes to its console often: a line each round
 * with a running checksum; its exit status is the checksum's low 7 bits. */
#include <vsw_guest.h>

int main(void)
{
    uint64_t h = 1469598103934665603ull;
    for (int round = 0; round < 300; round++) {
        for (int i = 0; i < 20000; i++)
            h = (h ^ (uint64_t)(i + round)) * 1099511628211ull;
        vsw_printf("chatty round %d: %016llx\n", round, (unsigned long long)h);
    }
    return (int)(h & 0x7f);
}
