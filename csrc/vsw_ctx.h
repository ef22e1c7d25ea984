/* vsw_ctx.h - context handles (ctx.c, cache.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_CTX_H
#define VSW_ABI_CTX_H

#include <stddef.h>
#include <stdint.h>
#include "vsw_pcpu.h"
#include "vsw_path.h"
#include "vsw_image.h"

/* CDEF-BEGIN */
/* A machine's context as the fast path names it: a slot of the path's store and
 * its owner, bound once so each switch passes two handles instead of five values.
 * It carries the epoch of the PCPUs' last thaw: a PCPU refuses a handle of
 * another epoch with -ESTALE before it touches the path, so a handle a thread
 * still holds after a migration can never reach a path that is gone. */
struct vsw_ctx;
int vsw_ctx_create(struct vsw_path *path, uint32_t slot, uint64_t owner, uint64_t epoch, struct vsw_ctx **out);
void vsw_ctx_destroy(struct vsw_ctx *c);
/* Takes the handle away from every PCPU (waiting for switches in flight on
 * them): afterwards each refuses it with -ESTALE, and its slot may be freed. */
int vsw_ctx_retire(struct vsw_ctx *c, struct vsw_pcpu *const *pcpus, uint32_t n);
/* A saved machine's context wherever it is (-EBUSY while loaded on a PCPU):
 * the same contracts as vsw_store_read/write/export/import, for either kind of handle. */
int vsw_ctx_read(struct vsw_ctx *x, uint32_t offset, void *buf, uint32_t len);
int vsw_ctx_write(struct vsw_ctx *x, uint32_t offset, const void *buf, uint32_t len);
int vsw_ctx_export(struct vsw_ctx *x, void *out, size_t len);
int vsw_ctx_import(struct vsw_ctx *x, const void *img, size_t len, struct vsw_image_info *info);
/* Frees a cached machine's slot and home (-EBUSY while loaded); retire it first.
 * A plain handle's slot belongs to its store's owner: -EINVAL. */
int vsw_ctx_release(struct vsw_ctx *x);
/* Takes a retired handle back into use with the PCPUs' epoch (a destroy that was refused). */
int vsw_ctx_revive(struct vsw_ctx *x, uint64_t epoch);
/* CDEF-END */

#endif
