/*
 * kvm_stub.c - the KVM backend where the build host has none (not Linux on
 * x86_64, or no <linux/kvm.h>): every call refuses with -ENOSYS.
 */
#include "kvm_internal.h"

#ifndef HAVE_KVM
#include <string.h>

int vsw_kvm_open(const char *path, uint64_t mem_bytes, struct vsw_kvm **out, struct vsw_kvm_info *info)
{
    (void)path, (void)mem_bytes, (void)out;
    if (info)
        memset(info, 0, sizeof(*info));
    return -ENOSYS;
}
void vsw_kvm_close(struct vsw_kvm *k) { (void)k; }
void *vsw_kvm_memory(struct vsw_kvm *k) { (void)k; return NULL; }
int vsw_kvm_clear(struct vsw_kvm *k, uint64_t offset, uint64_t len)
{
    (void)k, (void)offset, (void)len;
    return -ENOSYS;
}
int vsw_kvm_pull(struct vsw_kvm *k, struct vsw_pcpu *p) { (void)k, (void)p; return -ENOSYS; }
int vsw_kvm_push(struct vsw_kvm *k, struct vsw_pcpu *p) { (void)k, (void)p; return -ENOSYS; }
int vsw_kvm_run(struct vsw_kvm *k, uint64_t slice_ns, struct vsw_kvm_exit *exit)
{
    (void)k, (void)slice_ns, (void)exit;
    return -ENOSYS;
}
int vsw_kvm_bench_ioctls(struct vsw_kvm *k, uint64_t iterations, struct vsw_kvm_bench *out)
{
    (void)k, (void)iterations, (void)out;
    return -ENOSYS;
}
int vsw_kvm_complete_read(struct vsw_kvm *k, uint64_t value)
{
    (void)k, (void)value;
    return -ENOSYS;
}
int vsw_kvm_reset(struct vsw_kvm *k)
{
    (void)k;
    return -ENOSYS;
}
int vsw_kvm_flush(struct vsw_kvm *k)
{
    (void)k;
    return -ENOSYS;
}
int vsw_kvm_complete(struct vsw_kvm *k, struct vsw_kvm_exit *x)
{
    (void)k, (void)x;
    return -ENOSYS;
}
int vsw_kvm_calibrate(struct vsw_kvm *k, uint64_t slice_ns, uint32_t n, uint64_t *took_ns)
{
    (void)k, (void)slice_ns, (void)n, (void)took_ns;
    return -ENOSYS;
}
uint32_t vsw_kvm_refused_msr(const struct vsw_kvm *k)
{
    (void)k;
    return 0;
}
int vsw_kvm_loop(struct vsw_kvm *k, struct vsw_pcpu *p, struct vsw_ctx *const *ctxs, uint32_t n,
                 uint32_t current, struct vsw_kvm_loop *L)
{
    (void)k, (void)p, (void)ctxs, (void)n, (void)current, (void)L;
    return -ENOSYS;
}
int vsw_kvm_probe(const char *path, struct vsw_kvm_probe *out)
{
    (void)path;
    if (!out)
        return -EINVAL;
    *out = (struct vsw_kvm_probe){.error = -ENOSYS, .failed = VSW_KVM_PROBE_BUILD, .api_version = -1};
    return -ENOSYS;
}
#endif /* !HAVE_KVM */
