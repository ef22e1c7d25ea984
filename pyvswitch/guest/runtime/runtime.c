/*
 * runtime.c - the guest runtime: console, exit, virtual clock, a printf-style
 * formatter, the mem and str functions and a heap.  Freestanding: nothing
 * here calls outside the guest except through the device registers.
 */
#include "vsw_guest.h"

/* gcc must not turn these loops back into calls to themselves */
#define NO_LIBCALL __attribute__((optimize("no-tree-loop-distribute-patterns")))

static inline void reg_write64(unsigned long off, uint64_t v) { *(volatile uint64_t *)(VSW_MMIO + off) = v; }
static inline void reg_write32(unsigned long off, uint32_t v) { *(volatile uint32_t *)(VSW_MMIO + off) = v; }
static inline uint64_t reg_read64(unsigned long off) { return *(volatile uint64_t *)(VSW_MMIO + off); }

/* ---- console: buffered, flushed at a newline, when full and at exit ---- */
static char console[512];
static unsigned long console_len;

static void flush(void)
{
    if (console_len) {
        reg_write64(VSW_REG_CONSOLE_ADDR, (uint64_t)(uintptr_t)console);
        reg_write32(VSW_REG_CONSOLE_LEN, (uint32_t)console_len);
        console_len = 0;
    }
}

void vsw_putc(int c)
{
    console[console_len++] = (char)c;
    if (c == '\n' || console_len == sizeof(console))
        flush();
}

void vsw_write(const char *s, unsigned long n)
{
    while (n--)
        vsw_putc(*s++);
}

void vsw_exit(int status)
{
    flush();
    for (;;)
        reg_write32(VSW_REG_EXIT, (uint32_t)status);
}

unsigned long long vsw_clock_ns(void) { return reg_read64(VSW_REG_CLOCK); }

/* ---- the formatter: %d %i %u %x %X %o %c %s %p %%, flags - and 0, width,
 * precision for strings, length modifiers hh h l ll z ---- */
struct sink {
    char *buf;          /* NULL: the console */
    size_t size, n;
};

static void emit(struct sink *k, char c)
{
    if (!k->buf)
        vsw_putc(c);
    else if (k->n + 1 < k->size)
        k->buf[k->n] = c;
    k->n++;
}

static void emit_padded(struct sink *k, const char *s, size_t len, int width, int left, char pad)
{
    size_t fill = width > 0 && (size_t)width > len ? (size_t)width - len : 0;
    if (!left && pad == '0' && len && (s[0] == '-')) {      /* -0042: the sign before the zeros */
        emit(k, *s++);
        len--;
    }
    if (!left)
        while (fill--)
            emit(k, pad);
    while (len--)
        emit(k, *s++);
    if (left)
        while (fill--)
            emit(k, ' ');
}

static int format(struct sink *k, const char *fmt, va_list ap)
{
    char tmp[72];
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            emit(k, *fmt);
            continue;
        }
        int left = 0, width = 0, prec = -1, lng = 0;
        char pad = ' ';
        for (;; fmt++) {
            if (fmt[1] == '-')
                left = 1;
            else if (fmt[1] == '0')
                pad = '0';
            else
                break;
        }
        fmt++;
        if (*fmt == '*') {
            width = va_arg(ap, int);
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        if (*fmt == '.') {
            prec = 0;
            for (fmt++; *fmt >= '0' && *fmt <= '9'; fmt++)
                prec = prec * 10 + (*fmt - '0');
        }
        while (*fmt == 'l' || *fmt == 'h' || *fmt == 'z') {
            lng += *fmt == 'l' || *fmt == 'z' ? 1 : 0;
            fmt++;
        }
        unsigned long long u;
        int neg = 0, base = 10, upper = 0;
        switch (*fmt) {
        case 'd':
        case 'i': {
            long long v = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
            neg = v < 0;
            u = neg ? 0ull - (unsigned long long)v : (unsigned long long)v;
            goto number;
        }
        case 'p':
            u = (uintptr_t)va_arg(ap, void *);
            base = 16;
            emit(k, '0');
            emit(k, 'x');
            goto digits;
        case 'X':
            upper = 1;
            /* fall through */
        case 'x':
            base = 16;
            goto unsigned_arg;
        case 'o':
            base = 8;
            /* fall through */
        case 'u':
        unsigned_arg:
            u = lng >= 2 ? va_arg(ap, unsigned long long) : lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
        number:
        digits: {
            char *e = tmp + sizeof(tmp), *p = e;
            do {
                unsigned d = (unsigned)(u % (unsigned)base);
                *--p = (char)(d < 10 ? '0' + d : (upper ? 'A' : 'a') + d - 10);
                u /= (unsigned)base;
            } while (u);
            if (neg)
                *--p = '-';
            emit_padded(k, p, (size_t)(e - p), width, left, left ? ' ' : pad);
            break;
        }
        case 'c':
            tmp[0] = (char)va_arg(ap, int);
            emit_padded(k, tmp, 1, width, left, ' ');
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t len = strlen(s);
            if (prec >= 0 && (size_t)prec < len)
                len = (size_t)prec;
            emit_padded(k, s, len, width, left, ' ');
            break;
        }
        case '%':
            emit(k, '%');
            break;
        case '\0':
            return (int)k->n;
        default:                /* unknown: printed as it stands */
            emit(k, '%');
            emit(k, *fmt);
        }
    }
    return (int)k->n;
}

int vsw_vprintf(const char *fmt, va_list ap)
{
    struct sink k = {0, 0, 0};
    return format(&k, fmt, ap);
}

int vsw_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsw_vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int vsw_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    struct sink k = {buf, size, 0};
    va_list ap;
    va_start(ap, fmt);
    format(&k, fmt, ap);
    va_end(ap);
    if (size)
        buf[k.n < size ? k.n : size - 1] = '\0';
    return (int)k.n;
}

/* ---- memory and strings ---- */
NO_LIBCALL void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

NO_LIBCALL void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s)
        while (n--)
            *d++ = *s++;
    else
        while (n--)
            d[n] = s[n];
    return dst;
}

NO_LIBCALL void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

NO_LIBCALL size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++)
        if (*a != *b || !*a)
            return (unsigned char)*a - (unsigned char)*b;
    return 0;
}

NO_LIBCALL char *strcpy(char *dst, const char *src)
{
    char *d = dst;
    while ((*d++ = *src++))
        ;
    return dst;
}

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c)
            return (char *)s;
        if (!*s)
            return 0;
    }
}

/* ---- the heap: first fit over a free list, blocks of 16-byte units, between
 * the end of the image and the stack's reserve at the top ---- */
struct block {
    size_t size;                /* bytes after the header */
    struct block *next;         /* on the free list */
};
extern char _end[];
static char *heap_next, *heap_limit;
static struct block *free_list;
#define STACK_RESERVE (8ul << 20)

void vsw_runtime_init(unsigned long memory_size)
{
    heap_next = (char *)(((uintptr_t)_end + 15) & ~(uintptr_t)15);
    /* no room above the image (an address space of 8 MiB or less): no heap, never a limit below its start */
    uintptr_t top = memory_size > STACK_RESERVE ? memory_size - STACK_RESERVE : 0;
    heap_limit = top > (uintptr_t)heap_next ? (char *)top : heap_next;
}

void *malloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!n)
        n = 16;
    for (struct block **pp = &free_list; *pp; pp = &(*pp)->next)
        if ((*pp)->size >= n) {
            struct block *b = *pp;
            *pp = b->next;
            return b + 1;
        }
    if ((size_t)(heap_limit - heap_next) < n + sizeof(struct block))
        return 0;
    struct block *b = (struct block *)heap_next;
    b->size = n;
    heap_next += n + sizeof(struct block);
    return b + 1;
}

void free(void *p)
{
    if (!p)
        return;
    struct block *b = (struct block *)p - 1;
    b->next = free_list;
    free_list = b;
}

void *calloc(size_t n, size_t size)
{
    if (size && n > (size_t)-1 / size)
        return 0;
    void *p = malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    struct block *b = (struct block *)p - 1;
    if (b->size >= n)
        return p;
    void *q = malloc(n);
    if (q) {
        memcpy(q, p, b->size);
        free(p);
    }
    return q;
}
