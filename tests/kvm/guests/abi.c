/* The guest ABI itself: the formatter against known strings, the mem/str
 * functions, the heap (malloc, calloc, realloc, free and reuse). */
#include <vsw_guest.h>

static int fails;
static void same(const char *got, const char *want)
{
    if (strcmp(got, want)) {
        vsw_printf("MISMATCH [%s] != [%s]\n", got, want);
        fails++;
    }
}

int main(void)
{
    char b[128];
    vsw_snprintf(b, sizeof b, "%d|%i|%u|%x|%X", -12345, 42, 4000000000u, 0xbeefu, 0xbeefu);
    same(b, "-12345|42|4000000000|beef|BEEF");
    vsw_snprintf(b, sizeof b, "%ld|%lu|%lx|%lld|%llu|%llx", -9000000000l, 18000000000ul, 0xdeadbeefcafeul,
                 -9000000000000ll, 18446744073709551615ull, 0x123456789abcdefull);
    same(b, "-9000000000|18000000000|deadbeefcafe|-9000000000000|18446744073709551615|123456789abcdef");
    vsw_snprintf(b, sizeof b, "[%5d][%-5d][%05d][%-6s][%6s][%c][%%][%p]", 42, 42, -42, "ab", "cd", 'q', (void *)0xabc);
    same(b, "[   42][42   ][-0042][ab    ][    cd][q][%][0xabc]");
    vsw_snprintf(b, sizeof b, "%08x|%-8x|%3s|%.2s", 0x1fu, 0x1fu, "toolong", "xyz");
    same(b, "0000001f|1f      |toolong|xy");
    int n = vsw_snprintf(b, 4, "%d", 123456);
    same(b, "123");
    if (n != 6) { vsw_printf("snprintf returned %d\n", n); fails++; }

    char s[32];
    strcpy(s, "hello");
    if (strlen(s) != 5 || strcmp(s, "hello") || strncmp(s, "help", 3) || !strncmp(s, "help", 4) ||
        strchr(s, 'l') != s + 2 || strchr(s, 'z'))
        { vsw_printf("str functions\n"); fails++; }
    memmove(s + 1, s, 5);               /* overlapping */
    memset(s, 'x', 1);
    s[6] = 0;
    same(s, "xhello");
    if (memcmp("abc", "abd", 3) >= 0 || memcmp("abc", "abc", 3)) { vsw_printf("memcmp\n"); fails++; }

    int *p = calloc(1000, sizeof(int));
    for (int i = 0; i < 1000; i++) if (p[i]) { vsw_printf("calloc not zero\n"); fails++; break; }
    for (int i = 0; i < 1000; i++) p[i] = i;
    p = realloc(p, 5000 * sizeof(int));
    for (int i = 0; i < 1000; i++) if (p[i] != i) { vsw_printf("realloc lost data\n"); fails++; break; }
    free(p);
    void *q = malloc(4000 * sizeof(int));   /* the freed block is reused */
    if (!q) { vsw_printf("malloc\n"); fails++; }
    if (malloc((size_t)1 << 40)) { vsw_printf("a huge malloc succeeded\n"); fails++; }
    vsw_printf("abi %s (%d failures)\n", fails ? "FAILED" : "ok", fails);
    return fails;
}
