/* A guest written to misbehave: it works for a while, printing as it goes (so
 * it is preempted among the other guests and its device writes interleave
 * with theirs), then makes one device access the VMM must refuse as this
 * guest's fault - never completing it in another guest.  Which access: the
 * STRIKE record, which a test patches in the image (found by its magic). */
#include <vsw_guest.h>

struct strike {
    uint64_t magic;     /* "OSSTRIKE": where the test finds the record */
    uint64_t off;       /* from VSW_MMIO; a port number for kinds 3 and 4 */
    uint32_t width;     /* bytes: 1, 2, 4, 8; 16 (SSE), 32 (AVX), 64 (AVX-512) */
    uint32_t kind;      /* 0 store, 1 load, 2 rep movsb of width bytes, 3 out, 4 in, 5 console(addr=value, len=width) */
    uint64_t value;     /* stored, in every 8 bytes of the access */
    uint64_t work;      /* rounds of work first */
};

volatile struct strike STRIKE = {0x454b495254535344ull, 0x88, 16, 0, 0x1337, 400};

static void strike(void)
{
    uint64_t off = STRIKE.off, v = STRIKE.value;
    uint32_t width = STRIKE.width, kind = STRIKE.kind;
    uint64_t buf[8] __attribute__((aligned(64))) = {v, v, v, v, v, v, v, v};
    void *p = (void *)(uintptr_t)(VSW_MMIO + off);
    switch (kind * 100 + width) {
    case 1: *(volatile uint8_t *)p = (uint8_t)v; break;
    case 2: *(volatile uint16_t *)p = (uint16_t)v; break;
    case 4: *(volatile uint32_t *)p = (uint32_t)v; break;
    case 8: *(volatile uint64_t *)p = v; break;
    case 16: __asm__ volatile("movdqu (%1), %%xmm0\n\tmovdqu %%xmm0, (%0)" : : "r"(p), "r"(buf) : "xmm0", "memory"); break;
    case 32: __asm__ volatile("vmovdqu (%1), %%ymm0\n\tvmovdqu %%ymm0, (%0)" : : "r"(p), "r"(buf) : "xmm0", "memory"); break;
    case 64: __asm__ volatile("vmovdqu64 (%1), %%zmm0\n\tvmovdqu64 %%zmm0, (%0)" : : "r"(p), "r"(buf) : "xmm0", "memory"); break;
    case 101: buf[0] = *(volatile uint8_t *)p; break;
    case 102: buf[0] = *(volatile uint16_t *)p; break;
    case 104: buf[0] = *(volatile uint32_t *)p; break;
    case 108: buf[0] = *(volatile uint64_t *)p; break;
    case 116: __asm__ volatile("movdqu (%0), %%xmm0\n\tmovdqu %%xmm0, (%1)" : : "r"(p), "r"(buf) : "xmm0", "memory"); break;
    case 132: __asm__ volatile("vmovdqu (%0), %%ymm0\n\tvmovdqu %%ymm0, (%1)" : : "r"(p), "r"(buf) : "xmm0", "memory"); break;
    default:
        if (kind == 2) {
            unsigned long n = width;
            const void *src = buf;
            __asm__ volatile("rep movsb" : "+D"(p), "+S"(src), "+c"(n) : : "memory");
        } else if (kind == 3) {
            __asm__ volatile("outb %%al, %%dx" : : "a"((uint8_t)v), "d"((uint16_t)off));
        } else if (kind == 4) {
            uint8_t in;
            __asm__ volatile("inb %%dx, %%al" : "=a"(in) : "d"((uint16_t)off));
            buf[0] = in;
        } else if (kind == 5) {
            *(volatile uint64_t *)(uintptr_t)(VSW_MMIO + VSW_REG_CONSOLE_ADDR) = v;
            *(volatile uint32_t *)(uintptr_t)(VSW_MMIO + VSW_REG_CONSOLE_LEN) = width;
        }
    }
    vsw_printf("survived: read %llx\n", (unsigned long long)buf[0]);
}

int main(void)
{
    uint64_t x = 88172645463325252ull;
    for (uint64_t r = 0; r < STRIKE.work; r++) {
        for (int i = 0; i < 20000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        if (r % 50 == 0)
            vsw_printf("hostile round %llu: %llx\n", (unsigned long long)r, (unsigned long long)x);
    }
    strike();
    return 0x1337;
}
