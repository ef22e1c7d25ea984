/* image.h - context image helpers shared by the store and the PCPU. */
#ifndef VSW_IMAGE_H
#define VSW_IMAGE_H
#include "vsw_internal.h"

void vsw_image_header(const struct vsw_layout_def *L, uint8_t *out, uint32_t valid, uint64_t gen,
                      uint64_t owner);
void vsw_image_seal(uint8_t *img, uint32_t payload_size);
/* 0 when img is a sound image of layout L; else -errno, and *info says what was found. */
int vsw_image_check(const struct vsw_layout_def *L, const void *img, size_t len, struct vsw_image_info *info);
#endif
