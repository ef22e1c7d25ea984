/*
 * kvm_bench.c - the KVM ioctl benchmark (vsw_test.h): the ioctls pull and push
 * issue, timed from C; no product code calls it.
 * (kvm_internal.h says how the KVM backend's files divide it.)
 */
#include "kvm_internal.h"

#ifdef HAVE_KVM

int vsw_kvm_bench_ioctls(struct vsw_kvm *k, uint64_t iterations, struct vsw_kvm_bench *out)
{
    if (!k || !out || iterations == 0)
        return -EINVAL;
    if (kvm_vcpu_gone(k))
        return -ENXIO;
    /* the same ioctls pull and push make: the table's parts, then XSAVE, then the MSRs */
    enum { N = NPARTS + 2 };
    _Static_assert(N <= sizeof(out->names) / sizeof(out->names[0]), "vsw_kvm_bench holds every ioctl");
    unsigned long get[N], set[N];
    const char *name[N];
    for (size_t i = 0; i < NPARTS; i++)
        get[i] = kvm_parts[i].get, set[i] = kvm_parts[i].set, name[i] = kvm_parts[i].ioctl;
    get[NPARTS] = k->get_xsave, set[NPARTS] = KVM_SET_XSAVE, name[NPARTS] = "XSAVE";
    get[NPARTS + 1] = KVM_GET_MSRS, set[NPARTS + 1] = KVM_SET_MSRS, name[NPARTS + 1] = "MSRS";
    size_t each = (k->info.xsave_size + 4095) / 4096 * 4096;
    uint8_t *mem = aligned_alloc(64, N * each);
    if (!mem)
        return -ENOMEM;
    memset(mem, 0, N * each);
    uint8_t reset[VSW_MAX_CONTEXT] = {0};
    vsw_layout_get(VSW_LAYOUT_X86_64)->reset(reset);
    kvm_msr_request(k, reset);      /* the MSR request, as pull builds it */
    memcpy(mem + (NPARTS + 1) * each, &k->msrs, sizeof(k->msrs));
    *out = (struct vsw_kvm_bench){.iterations = iterations};
    for (int i = 0; i < N; i++)
        strncpy(out->names[i], name[i], sizeof(out->names[i]) - 1);
    int r = 0;
    for (int phase = 0; phase < 2; phase++)
        for (uint64_t it = 0; it < iterations && !r; it++)
            for (int i = 0; i < N; i++) {
                if (i < (int)NPARTS && kvm_parts[i].lapic && !k->lapic)
                    continue;
                uint64_t t = now_ns();
                if (ioctl(k->vcpu_fd, phase ? set[i] : get[i], mem + i * each) < 0)
                    r = err();
                (phase ? out->set_ns : out->get_ns)[i] += now_ns() - t;
            }
    free(mem);
    k->held = 0;                /* the benchmark set the vCPU to its own values */
    k->sync_fresh = 0;
    k->run->kvm_dirty_regs = 0;
    return r;
}

#endif /* HAVE_KVM */
