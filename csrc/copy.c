/* copy.c - the out-of-line copy-and-check, for writes off the switch path. */
#include "copy_sum.h"

VSW_VECTOR_CLONES
void vsw_copy_groups(uint8_t *dst, const uint8_t *src, const struct vsw_group_info *groups, uint32_t first,
                     uint32_t last, struct vsw_check *rec)
{
    vsw_copy_run(dst, src, groups, first, last, rec);
}
