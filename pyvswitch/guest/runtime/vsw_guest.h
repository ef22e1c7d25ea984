/*
 * vsw_guest.h - the pyvswitch guest ABI: what a freestanding C program needs
 * to run as a guest on pyvswitch's KVM backend (`pyvswitch guest build`).
 *
 * A guest runs in 64-bit mode at CPL 3 in an address space of its own
 * (virtual [2 MiB, size), size 64 MiB by default; the first 2 MiB are unmapped
 * so a null pointer faults).  main()'s return value is its exit status.  It
 * talks to the VMM through device registers at VSW_MMIO (each access exits to
 * the VMM); these functions wrap them.  The standard names the runtime
 * provides (memcpy ... free) are declared here too, so ported code links
 * unchanged.  Time: vsw_clock_ns() is the guest's own virtual clock, which
 * advances only while this guest runs - output that depends on it cannot
 * match a solo run exactly.
 */
#ifndef VSW_GUEST_H
#define VSW_GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "vsw_guest_abi.h"   /* VSW_MMIO and the device registers */

#ifdef __cplusplus
extern "C" {
#endif

void vsw_putc(int c);
void vsw_write(const char *s, unsigned long n);
int vsw_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vsw_vprintf(const char *fmt, va_list ap);
int vsw_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void vsw_exit(int status) __attribute__((noreturn));
unsigned long long vsw_clock_ns(void);

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strcpy(char *dst, const char *src);
char *strchr(const char *s, int c);
void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);

#ifdef __cplusplus
}
#endif
#endif
