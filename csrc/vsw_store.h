/* vsw_store.h - the context store (store.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_STORE_H
#define VSW_ABI_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "vsw_image.h"

/* CDEF-BEGIN */
/* ---- context store (SRAM model; also used for the MEM region of the prior art) ---- */
struct vsw_slot_info {
    uint64_t owner;
    uint64_t generation;
    uint32_t valid_mask;
    uint32_t bank_mask;     /* bit g: which bank holds group g */
    uint32_t resident;      /* 1 while loaded on a PCPU */
};
struct vsw_store;
int vsw_store_create(uint32_t layout, uint64_t capacity_bytes, struct vsw_store **out);
void vsw_store_destroy(struct vsw_store *s);
/* Bytes one slot occupies (two banks plus metadata), and slots that fit. */
int64_t vsw_store_slot_bytes(const struct vsw_store *s);
int vsw_store_capacity_slots(const struct vsw_store *s);
int vsw_store_used_slots(const struct vsw_store *s);
/* Returns the slot number (O(1): the slot freed last, its memory still warm; in
 * a new store slot 0, 1, ...); the slot starts as the layout's reset state.
 * One slot per owner is the caller's to keep. */
int vsw_store_alloc(struct vsw_store *s, uint64_t owner);
int vsw_store_free(struct vsw_store *s, uint32_t slot, uint64_t owner);
int vsw_store_slot_info(const struct vsw_store *s, uint32_t slot, uint64_t owner, struct vsw_slot_info *out);
/* Reads the committed context of a slot that is not loaded anywhere. */
int vsw_store_read(const struct vsw_store *s, uint32_t slot, uint64_t owner,
                   uint32_t offset, void *buf, uint32_t len);
/* Writes part of a saved context; atomic (shadow banks, one commit). */
int vsw_store_write(struct vsw_store *s, uint32_t slot, uint64_t owner,
                    uint32_t offset, const void *buf, uint32_t len);
int vsw_store_export(const struct vsw_store *s, uint32_t slot, uint64_t owner, void *out, size_t len);
/* Validates the whole image first; on any error the slot is untouched and *info says what was found. */
int vsw_store_import(struct vsw_store *s, uint32_t slot, uint64_t owner, const void *img, size_t len,
                     struct vsw_image_info *info);
/* CDEF-END */

#endif
