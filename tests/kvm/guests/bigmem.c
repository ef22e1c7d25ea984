/* More than 16 MiB: 24 MiB allocated, every page written and read back. */
#include <vsw_guest.h>

int main(void)
{
    const unsigned long size = 24ul << 20;
    uint64_t *m = malloc(size);
    if (!m) { vsw_printf("no memory\n"); return 1; }
    unsigned long n = size / 8;
    for (unsigned long i = 0; i < n; i++)
        m[i] = i * 0x9e3779b97f4a7c15ull;
    uint64_t sum = 0;
    for (unsigned long i = 0; i < n; i += 7)
        sum += m[i] ^ (sum >> 11);
    vsw_printf("touched %lu MiB at %p, sum %016llx\n", size >> 20, (void *)m, (unsigned long long)sum);
    return 0;
}
