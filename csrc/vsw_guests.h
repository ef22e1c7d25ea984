/* vsw_guests.h - guest programs assembled with the C core (guests.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_GUESTS_H
#define VSW_ABI_GUESTS_H

#include <stddef.h>
#include <stdint.h>

/* CDEF-BEGIN */
/* ---- guest programs, assembled from source with the C core (csrc/guests.c) ---- */
struct vsw_guest_program {
    const char *name;
    const uint8_t *code;
    uint32_t size;
};
int vsw_guest_program(uint32_t index, struct vsw_guest_program *out);
/* CDEF-END */

#endif
