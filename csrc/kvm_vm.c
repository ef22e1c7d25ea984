/*
 * kvm_vm.c - the KVM backend's VM: /dev/kvm, the VM and its guest memory, the
 * host's CPUID and MSR list, the capabilities it enables, a vCPU and its reset.
 * (kvm_internal.h says how the KVM backend's files divide it.)
 */
#include "kvm_internal.h"

#ifdef HAVE_KVM

static void kick_handler(int sig) { (void)sig; }

static int group_offset(const struct vsw_layout_def *L, const char *name, uint32_t *off)
{
    for (uint32_t g = 0; g < L->ngroups; g++)
        if (!strcmp(L->groups[g].name, name)) {
            *off = L->groups[g].offset;
            return 0;
        }
    return -ENOENT;
}

/* ---- the host's capabilities: vsw_kvm_probe(), and what vsw_kvm_open() takes of them ---- */

static const struct {
    uint32_t bit;
    unsigned long cap;
} probe_caps[] = {
    {VSW_KVM_CAP_XSAVE, KVM_CAP_XSAVE}, {VSW_KVM_CAP_XCRS, KVM_CAP_XCRS},
    {VSW_KVM_CAP_DEBUGREGS, KVM_CAP_DEBUGREGS}, {VSW_KVM_CAP_VCPU_EVENTS, KVM_CAP_VCPU_EVENTS},
    {VSW_KVM_CAP_XSAVE2, KVM_CAP_XSAVE2}, {VSW_KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_IMMEDIATE_EXIT},
    {VSW_KVM_CAP_SYNC_REGS, KVM_CAP_SYNC_REGS}, {VSW_KVM_CAP_SPLIT_IRQCHIP, KVM_CAP_SPLIT_IRQCHIP},
    {VSW_KVM_CAP_EXCEPTION_PAYLOAD, KVM_CAP_EXCEPTION_PAYLOAD},
};

static int probe_fail(struct vsw_kvm_probe *pr, uint32_t step, int r)
{
    pr->failed = step;
    pr->error = r;
    return r;
}

/* KVM_GET_SUPPORTED_CPUID, and from its leaf 0xD which XSAVE components exist
 * here and where this host puts them.  The table goes to *keep (for
 * KVM_SET_CPUID2) when keep is not NULL, else it is freed. */
static int probe_cpuid(int fd, struct vsw_kvm_probe *pr, struct kvm_cpuid2 **keep)
{
    int n = 128;
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
    if (!c)
        return -ENOMEM;
    c->nent = n;
    if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
        int r = err();
        free(c);
        return r;
    }
    struct vsw_xsave_map *m = &pr->xsave;
    for (uint32_t i = 0; i < c->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function != 0xd)
            continue;
        if (e->index == 0) {
            pr->supported_xcr0 = e->eax | ((uint64_t)e->edx << 32);
            m->size = e->ecx;
        } else if (e->index >= 2 && e->index < VSW_XSAVE_COMPONENTS) {
            m->offset[e->index] = e->ebx;
            m->csize[e->index] = e->eax;
        }
    }
    m->xcr0 = pr->supported_xcr0 & vsw_xsave_known();
    if ((m->xcr0 & 0x18) != 0x18)
        m->xcr0 &= ~0x18ull;        /* MPX is both components or neither */
    if (keep)
        *keep = c;
    else
        free(c);
    return 0;
}

/* Which of the layout's MSRs KVM_GET_MSR_INDEX_LIST names. */
static int probe_msrs(int fd, struct vsw_kvm_probe *pr)
{
    const struct vsw_layout_def *L = vsw_layout_get(VSW_LAYOUT_X86_64);
    uint32_t g_msrs = 0;
    for (uint32_t g = 0; g < L->ngroups; g++)
        if (!strcmp(L->groups[g].name, "msrs")) {
            g_msrs = L->groups[g].offset;
            pr->layout_msrs = L->groups[g].used / MSR_REC;
        }
    if (pr->layout_msrs > 64)
        return -E2BIG;              /* msr_present has a bit per record */
    uint8_t reset[VSW_MAX_CONTEXT];
    memset(reset, 0, sizeof(reset));
    L->reset(reset);
    struct kvm_msr_list count = {.nmsrs = 0};
    ioctl(fd, KVM_GET_MSR_INDEX_LIST, &count);     /* E2BIG, with the count */
    struct kvm_msr_list *list = calloc(1, sizeof(*list) + count.nmsrs * sizeof(uint32_t));
    if (!list)
        return -ENOMEM;
    list->nmsrs = count.nmsrs;
    if (ioctl(fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
        int r = err();
        free(list);
        return r;
    }
    pr->host_msrs = list->nmsrs;
    for (uint32_t i = 0; i < pr->layout_msrs; i++) {
        struct kvm_msr_entry rec;
        memcpy(&rec, reset + g_msrs + sizeof(rec) * i, sizeof(rec));
        for (uint32_t j = 0; j < list->nmsrs; j++)
            if (list->indices[j] == rec.index)
                pr->msr_present |= 1ull << i;
    }
    free(list);
    return 0;
}

/* Everything the probe reads, through an open /dev/kvm: 0, or -errno with the
 * failed step in *pr. */
static int probe_fd(int fd, struct vsw_kvm_probe *pr, struct kvm_cpuid2 **keep_cpuid)
{
    pr->api_version = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (pr->api_version != KVM_API_VERSION)
        return probe_fail(pr, VSW_KVM_PROBE_API, -EPROTONOSUPPORT);
    for (size_t i = 0; i < sizeof(probe_caps) / sizeof(probe_caps[0]); i++)
        if (ioctl(fd, KVM_CHECK_EXTENSION, probe_caps[i].cap) > 0)
            pr->caps |= probe_caps[i].bit;
    pr->missing = VSW_KVM_CAPS_REQUIRED & ~pr->caps;
    if (pr->missing)
        return probe_fail(pr, VSW_KVM_PROBE_CAPS, -EOPNOTSUPP);
    /* XSAVE2 where the host's area is larger (dynamic features): the same layout, more tail */
    int xsize = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    pr->xsave_size = xsize > (int)sizeof(struct kvm_xsave) ? (uint32_t)xsize : sizeof(struct kvm_xsave);
    int r = probe_cpuid(fd, pr, keep_cpuid);
    if (r < 0)
        return probe_fail(pr, VSW_KVM_PROBE_CPUID, r);
    if ((r = vsw_xsave_map_check(&pr->xsave)) < 0)
        return probe_fail(pr, VSW_KVM_PROBE_XSAVE, r);
    if ((r = probe_msrs(fd, pr)) < 0)
        return probe_fail(pr, VSW_KVM_PROBE_MSRS, r);
    return 0;
}

int vsw_kvm_probe(const char *path, struct vsw_kvm_probe *out)
{
    if (!out)
        return -EINVAL;
    *out = (struct vsw_kvm_probe){.api_version = -1};
    int fd = open(path ? path : "/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return probe_fail(out, VSW_KVM_PROBE_OPEN, err());
    int r = probe_fd(fd, out, NULL);
    close(fd);
    return r;
}

static const struct {
    uint32_t cap, flag;
} event_caps[] = {
    {KVM_CAP_EXCEPTION_PAYLOAD, KVM_VCPUEVENT_VALID_PAYLOAD},
#ifdef KVM_CAP_X86_TRIPLE_FAULT_EVENT
    {KVM_CAP_X86_TRIPLE_FAULT_EVENT, KVM_VCPUEVENT_VALID_TRIPLE_FAULT},
#endif
};

static void vm_caps(struct vsw_kvm *k);
static int vm_memslots(struct vsw_kvm *k);

/* A vCPU (the next id) with its run area, the host's CPUID, write-back MTRRs. */
static int vcpu_create(struct vsw_kvm *k)
{
    k->vcpu_fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, k->next_vcpu_id++);
    if (k->vcpu_fd < 0)
        return err();
    int run_size = ioctl(k->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < 0)
        return err();
    k->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, k->vcpu_fd, 0);
    if (k->run == MAP_FAILED) {
        k->run = NULL;
        return err();
    }
    k->run_size = (size_t)run_size;
    /* regs, sregs and events travel in kvm_run where the host can (no ioctl on a switch) */
    int sync = ioctl(k->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
    k->sync = sync > 0 ? (uint32_t)sync & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS) : 0;
    k->run->kvm_valid_regs = k->sync;
    k->held = 0;
    k->sync_fresh = 0;
    if (ioctl(k->vcpu_fd, KVM_SET_CPUID2, k->cpuid) < 0)
        return err();
    if (ioctl(k->vcpu_fd, k->get_xsave, k->xsave) < 0)
        return err();
    if (k->lapic && ioctl(k->vcpu_fd, KVM_GET_LAPIC, &k->lapic_reset) < 0)
        return err();
    /* with an in-kernel LAPIC only vCPU 0 starts runnable; a replacement would wait for a SIPI */
    struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
    if (k->lapic && ioctl(k->vcpu_fd, KVM_SET_MP_STATE, &mp) < 0)
        return err();
    /* MTRRs: default type write-back, as firmware would leave it (KVM starts at uncached) */
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[1];
    } mtrr = {.hdr = {.nmsrs = 1}, .e = {{.index = 0x2ff, .data = 0xc06}}};
    return ioctl(k->vcpu_fd, KVM_SET_MSRS, &mtrr) == 1 ? 0 : -EIO;
}

/* After a triple fault the vCPU is undefined (SVM resets its VMCB, VMX leaves
 * it in shutdown): a fresh one takes its place; the next push gives it a state. */
int vsw_kvm_reset(struct vsw_kvm *k)
{
    if (!k)
        return -EINVAL;
    if (k->run)
        munmap(k->run, k->run_size);
    if (k->vcpu_fd >= 0)
        close(k->vcpu_fd);
    k->run = NULL;
    k->vcpu_fd = -1;
    k->read_pending = 0;
    k->io_pending = 0;
    k->masked = 0;              /* the signal mask is the old vCPU's */
    k->held = 0;
    k->sync_fresh = 0;
    /* KVM frees vCPUs only with their VM: when its vCPUs run out (KVM_CAP_MAX_VCPUS;
     * a guest's system call costs one on hosts where it is a shutdown, see
     * pyvswitch.guest.linux), a fresh VM takes over the same guest memory */
    int max = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max > 0 && k->next_vcpu_id >= max) {
        close(k->vm_fd);
        k->vm_fd = ioctl(k->sys_fd, KVM_CREATE_VM, 0);
        if (k->vm_fd < 0)
            return err();
        int r = vm_memslots(k);
        if (r < 0)
            return r;
        k->events_flags = 0;
        vm_caps(k);
        k->next_vcpu_id = 0;
    }
    int r = vcpu_create(k);
    if (r < 0 && k->run) {      /* half made: none at all, so every call says so (-ENXIO) until a reset works */
        munmap(k->run, k->run_size);
        k->run = NULL;
    }
    if (r < 0 && k->vcpu_fd >= 0) {
        close(k->vcpu_fd);
        k->vcpu_fd = -1;
    }
    return r;
}

/* Where each part lives in the layout, resolved once by name. */
static int layout_offsets(struct vsw_kvm *k, const struct vsw_layout_def *L)
{
    for (size_t i = 0; i < NPARTS; i++)
        group_offset(L, kvm_parts[i].group, &k->part_off[i]);
    group_offset(L, "fpu_sse", &k->g_xsave);
    group_offset(L, "msrs", &k->g_msrs);
    for (uint32_t g = 0; g < L->ngroups; g++)
        if (!strcmp(L->groups[g].name, "msrs"))
            k->nmsrs = L->groups[g].used / MSR_REC;
    uint32_t g_xcrs = 0;
    group_offset(L, "xcrs", &g_xcrs);
    k->xsave_span = g_xcrs - k->g_xsave;
    return k->nmsrs > MAX_MSRS ? -E2BIG : 0;
}

/* /dev/kvm and what the probe reads through it (vsw_kvm_probe): the host's
 * CPUID table kept for each vCPU, the XSAVE buffer sized for this host. */
static int host_facts(struct vsw_kvm *k, const char *path)
{
    k->sys_fd = open(path ? path : "/dev/kvm", O_RDWR | O_CLOEXEC);
    if (k->sys_fd < 0)
        return err();
    struct vsw_kvm_probe pr = {.api_version = -1};
    int r = probe_fd(k->sys_fd, &pr, &k->cpuid);
    k->info.api_version = pr.api_version;
    if (r < 0)
        return r;
    k->info.xsave_size = pr.xsave_size;
    k->info.xsave = pr.xsave;
    k->info.supported_xcr0 = pr.supported_xcr0;
    k->info.msr_present = pr.msr_present;
    k->info.host_msrs = pr.host_msrs;
    k->get_xsave = pr.xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
    k->xsave = calloc(1, k->info.xsave_size);
    return k->xsave ? 0 : -ENOMEM;
}

/* A VM, and `mem_bytes` of guest memory (reserved, not committed) at
 * guest-physical 0. */
static int vm_create(struct vsw_kvm *k, uint64_t mem_bytes)
{
    k->vm_fd = ioctl(k->sys_fd, KVM_CREATE_VM, 0);
    if (k->vm_fd < 0)
        return err();
    k->mem = mmap(NULL, mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (k->mem == MAP_FAILED) {
        k->mem = NULL;
        return err();
    }
    k->mem_bytes = k->info.mem_bytes = mem_bytes;
    /* the calibration guest (vsw_kvm_calibrate): CPL 3 code at virtual = physical
     * CAL_CODE, a `jmp .`, through 4 KiB pages of its own */
    k->cal = mmap(NULL, CAL_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (k->cal == MAP_FAILED) {
        k->cal = NULL;
        return err();
    }
    uint64_t *pt = (uint64_t *)k->cal;
    pt[0] = (CAL_GPA + 0x1000) | 7;                                     /* PML4[0] */
    pt[512 + ((CAL_CODE >> 30) & 511)] = (CAL_GPA + 0x2000) | 7;        /* PDPT */
    pt[1024 + ((CAL_CODE >> 21) & 511)] = (CAL_GPA + 0x3000) | 7;       /* PD */
    pt[1536 + ((CAL_CODE >> 12) & 511)] = CAL_CODE | 7;                 /* PT */
    k->cal[4 * 4096] = 0xeb, k->cal[4 * 4096 + 1] = 0xfe;               /* jmp . */
    return vm_memslots(k);
}

/* Guest memory (slot 0) and the calibration guest (slot 1) into the VM: at its
 * creation, and again when a fresh VM takes over (vsw_kvm_reset). */
static int vm_memslots(struct vsw_kvm *k)
{
    struct kvm_userspace_memory_region mem = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = k->mem_bytes, .userspace_addr = (uint64_t)(uintptr_t)k->mem};
    struct kvm_userspace_memory_region cal = {
        .slot = 1, .guest_phys_addr = CAL_GPA, .memory_size = CAL_PAGES * 4096, .userspace_addr = (uint64_t)(uintptr_t)k->cal};
    if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &mem) < 0 || ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &cal) < 0)
        return err();
    return 0;
}

/* What the VM can do for us, where the host offers it. */
static void vm_caps(struct vsw_kvm *k)
{
    /* an in-kernel local APIC (the PIC and IOAPIC stay out: no guest has interrupts)
     * makes the LAPIC state a group of each machine's context */
    struct kvm_enable_cap split = {.cap = KVM_CAP_SPLIT_IRQCHIP, .args = {24}};
    k->lapic = ioctl(k->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SPLIT_IRQCHIP) > 0 &&
               ioctl(k->vm_fd, KVM_ENABLE_CAP, &split) == 0;
    k->info.lapic = (uint32_t)k->lapic;
    /* make every pending event part of VCPU_EVENTS, so it belongs to one machine's
     * context: an exception not yet delivered (with its payload), and a triple
     * fault a guest raised just before it was preempted - without this, that
     * request stays in the vCPU and shuts the next guest down */
    for (size_t i = 0; i < sizeof(event_caps) / sizeof(event_caps[0]); i++) {
        struct kvm_enable_cap cap = {.cap = event_caps[i].cap, .args = {1}};
        if (ioctl(k->vm_fd, KVM_CHECK_EXTENSION, event_caps[i].cap) > 0 && ioctl(k->vm_fd, KVM_ENABLE_CAP, &cap) == 0)
            k->events_flags |= event_caps[i].flag;
    }
}

int vsw_kvm_open(const char *path, uint64_t mem_bytes, struct vsw_kvm **out, struct vsw_kvm_info *info)
{
    /* guest memory ends below the device registers */
    if (!out || mem_bytes == 0 || mem_bytes % (2u << 20) || mem_bytes > VSW_MMIO)
        return -EINVAL;
    struct vsw_kvm *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->sys_fd = k->vm_fd = k->vcpu_fd = -1;
    int r = layout_offsets(k, vsw_layout_get(VSW_LAYOUT_X86_64));
    if (r == 0)
        r = host_facts(k, path);
    if (r == 0)
        r = vm_create(k, mem_bytes);
    if (r == 0) {
        vm_caps(k);
        r = vcpu_create(k);
    }
    /* the kick: a no-op handler, so the timer's signal interrupts KVM_RUN and nothing else */
    struct sigaction sa = {.sa_handler = kick_handler};
    sigemptyset(&sa.sa_mask);
    if (r == 0 && sigaction(KICK_SIGNAL, &sa, NULL) < 0)
        r = err();
    if (info)
        *info = k->info;
    if (r < 0) {
        vsw_kvm_close(k);
        return r;
    }
    *out = k;
    return 0;
}

void vsw_kvm_close(struct vsw_kvm *k)
{
    if (!k)
        return;
    if (k->have_timer)
        timer_delete(k->timer);
    if (k->run)
        munmap(k->run, k->run_size);
    if (k->vcpu_fd >= 0)
        close(k->vcpu_fd);
    if (k->vm_fd >= 0)
        close(k->vm_fd);
    if (k->mem)
        munmap(k->mem, k->mem_bytes);
    if (k->cal)
        munmap(k->cal, CAL_PAGES * 4096);
    if (k->sys_fd >= 0)
        close(k->sys_fd);
    free(k->xsave);
    free(k->cpuid);
    free(k);
}

void *vsw_kvm_memory(struct vsw_kvm *k) { return k ? k->mem : NULL; }

int vsw_kvm_clear(struct vsw_kvm *k, uint64_t offset, uint64_t len)
{
    if (!k || offset % 4096 || len % 4096 || offset > k->mem_bytes || len > k->mem_bytes - offset)
        return -EINVAL;
    /* private anonymous memory reads back as zeros; KVM drops its mappings through its MMU notifier */
    return madvise(k->mem + offset, len, MADV_DONTNEED) < 0 ? err() : 0;
}

#endif /* HAVE_KVM */
