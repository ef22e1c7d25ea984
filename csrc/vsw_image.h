/* vsw_image.h - context images and their CRC32C (image.c, crc32c.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_IMAGE_H
#define VSW_ABI_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* CDEF-BEGIN */
#define VSW_IMAGE_MAGIC 0x49575356
#define VSW_IMAGE_HEADER_SIZE 40

uint32_t vsw_crc32c(uint32_t crc, const void *buf, size_t len);
int vsw_crc32c_hw(void);

/* ---- context image ---- */
/* The image's header as it lies in the bytes (little-endian, no padding: the
 * VSW_IMAGE_HEADER_SIZE bytes before the payload).  The CRC32C covers the header,
 * with crc zero, and the payload. */
struct vsw_image_header {
    uint32_t magic;         /* VSW_IMAGE_MAGIC */
    uint16_t layout;        /* enum vsw_layout_id */
    uint16_t version;       /* of the layout */
    uint32_t payload_size;
    uint32_t valid_mask;    /* groups the payload holds */
    uint64_t generation;
    uint64_t owner;
    uint32_t header_size;   /* VSW_IMAGE_HEADER_SIZE */
    uint32_t crc;
};
struct vsw_image_info {
    uint32_t magic;
    uint32_t layout;
    uint32_t version;
    uint32_t payload_size;
    uint32_t valid_mask;
    uint32_t header_size;
    uint64_t generation;
    uint64_t owner;
    uint32_t crc_stored;
    uint32_t crc_computed;
    uint64_t length;        /* bytes handed in */
};
/* Bytes an image of the layout takes. */
int vsw_image_size(uint32_t layout);
/* CDEF-END */

#endif
