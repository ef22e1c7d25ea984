/* Deep recursion: 100,000 nested calls (several MiB of stack), twice. */
#include <vsw_guest.h>

static uint64_t down(uint64_t depth, uint64_t acc)
{
    volatile uint64_t pad[4] = {acc, depth, acc ^ depth, acc + depth};   /* a real frame each */
    if (depth == 0)
        return acc;
    uint64_t r = down(depth - 1, acc * 6364136223846793005ull + depth + pad[2]);
    return r ^ (pad[3] >> 3);
}

int main(void)
{
    uint64_t a = down(100000, 1), b = down(100000, a);
    vsw_printf("recursion %016llx %016llx\n", (unsigned long long)a, (unsigned long long)b);
    return 0;
}
