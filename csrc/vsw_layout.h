/* vsw_layout.h - register-context layouts (layout.c, layout_x86_64.c, layout_aarch64.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_LAYOUT_H
#define VSW_ABI_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* CDEF-BEGIN */
#define VSW_MAX_GROUPS 32

enum vsw_layout_id { VSW_LAYOUT_X86_64 = 1, VSW_LAYOUT_AARCH64 = 2 };

/* Group flags: how the prior-art PCPU path stores a group to memory. */
enum vsw_group_flags { VSW_GROUP_SCALAR = 0, VSW_GROUP_VECTOR = 1 };

struct vsw_layout_info {
    const char *name;
    uint32_t id;
    uint32_t version;
    uint32_t size;          /* bytes of register state (sum of the groups) */
    uint32_t ngroups;
    uint32_t nfields;
    uint32_t uapi_checked;  /* 1 when offsets were checked against <linux/kvm.h> at build time */
};

/* A group spans `size` bytes (a multiple of 64) from `offset`; its registers
 * (one KVM struct or XSAVE component) fill the first `used` bytes. */
struct vsw_group_info {
    const char *name;
    uint32_t offset;
    uint32_t size;
    uint32_t flags;
    uint32_t used;
};

struct vsw_field_info {
    const char *name;
    uint32_t group;
    uint32_t offset;        /* from the start of the register file */
    uint32_t size;
};

/* One record of the x86_64 layout's MSR group: KVM's struct kvm_msr_entry, byte
 * for byte (layout_x86_64.c proves it where <linux/kvm.h> is installed). */
struct vsw_msr_record {
    uint32_t index;
    uint32_t reserved;
    uint64_t data;
};

int vsw_layout_by_name(const char *name);
int vsw_layout_info(uint32_t layout, struct vsw_layout_info *out);
int vsw_layout_group(uint32_t layout, uint32_t index, struct vsw_group_info *out);
int vsw_layout_field(uint32_t layout, uint32_t index, struct vsw_field_info *out);
/* Writes the layout's structural constants (MSR indices, XCR numbers) into buf. */
int vsw_layout_reset(uint32_t layout, void *buf, size_t len);

/* CDEF-END */

#endif
