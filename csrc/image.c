/*
 * image.c - the context image: a 40-byte little-endian header and the payload
 * (the register file in its layout).  The CRC32C covers the header, with its
 * crc field zero, and the payload.  Checks run structure first, then the CRC,
 * then meaning, so a damaged image reads as damaged, not as foreign.
 */
#include "vsw_internal.h"
#include "image.h"
#include <stddef.h>
#include <string.h>

/* where each field of struct vsw_image_header lies (the bytes need not be aligned: memcpy) */
#define OFF(field) offsetof(struct vsw_image_header, field)
enum { OFF_MAGIC = OFF(magic), OFF_LAYOUT = OFF(layout), OFF_VERSION = OFF(version), OFF_PAYLOAD = OFF(payload_size),
       OFF_VALID = OFF(valid_mask), OFF_GEN = OFF(generation), OFF_OWNER = OFF(owner), OFF_HSIZE = OFF(header_size),
       OFF_CRC = OFF(crc) };
_Static_assert(sizeof(struct vsw_image_header) == VSW_IMAGE_HEADER_SIZE, "the header struct is the header, unpadded");
_Static_assert(OFF_CRC + 4 == VSW_IMAGE_HEADER_SIZE, "the CRC ends the header");

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

int vsw_image_size(uint32_t layout)
{
    const struct vsw_layout_def *L = vsw_layout_get(layout);
    return L ? (int)(VSW_IMAGE_HEADER_SIZE + L->size) : -ENOENT;
}

void vsw_image_header(const struct vsw_layout_def *L, uint8_t *out, uint32_t valid, uint64_t gen,
                      uint64_t owner)
{
    uint32_t magic = VSW_IMAGE_MAGIC, size = L->size, hsize = VSW_IMAGE_HEADER_SIZE, zero = 0;
    uint16_t id = (uint16_t)L->id, ver = (uint16_t)L->version;
    memcpy(out + OFF_MAGIC, &magic, 4);
    memcpy(out + OFF_LAYOUT, &id, 2);
    memcpy(out + OFF_VERSION, &ver, 2);
    memcpy(out + OFF_PAYLOAD, &size, 4);
    memcpy(out + OFF_VALID, &valid, 4);
    memcpy(out + OFF_GEN, &gen, 8);
    memcpy(out + OFF_OWNER, &owner, 8);
    memcpy(out + OFF_HSIZE, &hsize, 4);
    memcpy(out + OFF_CRC, &zero, 4);
}

/* Seals an image whose header and payload are written: stores the CRC. */
void vsw_image_seal(uint8_t *img, uint32_t payload_size)
{
    uint32_t crc = vsw_crc32c(0, img, VSW_IMAGE_HEADER_SIZE + (size_t)payload_size);
    memcpy(img + OFF_CRC, &crc, 4);
}

/* The header's fields, and whether the header is ours and the length its size. */
static int read_header(const uint8_t *p, size_t len, struct vsw_image_info *i)
{
    i->length = len;
    if (!p || len < VSW_IMAGE_HEADER_SIZE)
        return -ENODATA;
    i->magic = rd32(p + OFF_MAGIC);
    i->layout = rd16(p + OFF_LAYOUT);
    i->version = rd16(p + OFF_VERSION);
    i->payload_size = rd32(p + OFF_PAYLOAD);
    i->valid_mask = rd32(p + OFF_VALID);
    i->generation = rd64(p + OFF_GEN);
    i->owner = rd64(p + OFF_OWNER);
    i->header_size = rd32(p + OFF_HSIZE);
    i->crc_stored = rd32(p + OFF_CRC);
    if (i->magic != VSW_IMAGE_MAGIC || i->header_size != VSW_IMAGE_HEADER_SIZE)
        return -ENOEXEC;
    uint64_t want = (uint64_t)VSW_IMAGE_HEADER_SIZE + i->payload_size;
    return len < want ? -ENODATA : len > want ? -EMSGSIZE : 0;
}

int vsw_image_check(const struct vsw_layout_def *L, const void *img, size_t len, struct vsw_image_info *info)
{
    const uint8_t *p = img;
    struct vsw_image_info i = {0};
    int r = read_header(p, len, &i);
    if (r == 0) {
        uint32_t zero = 0;
        uint32_t crc = vsw_crc32c(0, p, OFF_CRC);
        crc = vsw_crc32c(crc, &zero, 4);
        i.crc_computed = vsw_crc32c(crc, p + VSW_IMAGE_HEADER_SIZE, i.payload_size);
        if (i.crc_computed != i.crc_stored)
            r = -EBADMSG;
        else if (i.layout != L->id)
            r = -EXDEV;
        else if (i.version != L->version)
            r = -EPROTONOSUPPORT;
        else if (i.payload_size != L->size)
            r = -EMSGSIZE;
        else if (i.valid_mask & ~vsw_layout_all(L))
            r = -EINVAL;
    }
    if (info)
        *info = i;
    return r;
}
