/*
 * vsw_libc.c - the guest API of vsw_guest.h for a guest linked with musl's C
 * library (`pyvswitch guest build --libc musl`).  Such a guest is a static
 * Linux program: musl's start-up code and stdio run as they would on Linux, their
 * system calls served by pyvswitch (pyvswitch.guest.linux), so printf, puts,
 * putchar, <ctype.h> and libm are musl's own.  vsw_* write through stdout, so
 * their output and printf's keep their order; vsw_clock_ns reads the device
 * register as in a freestanding guest.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "vsw_guest.h"

/* the loader's mark: this image expects a Linux stack and system calls */
__attribute__((used, section(".vsw_linux"))) static const char vsw_linux_abi[] = "vsw-linux-abi 1";

void vsw_putc(int c) { putchar(c); }

void vsw_write(const char *s, unsigned long n) { fwrite(s, 1, n, stdout); }

int vsw_vprintf(const char *fmt, va_list ap) { return vprintf(fmt, ap); }

int vsw_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vprintf(fmt, ap);
    va_end(ap);
    return r;
}

int vsw_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return r;
}

void vsw_exit(int status) { exit(status); }

unsigned long long vsw_clock_ns(void)
{
    return *(volatile unsigned long long *)(uintptr_t)(VSW_MMIO + VSW_REG_CLOCK);
}
