/*
 * kvm_state.c - the KVM backend's state: pull and push between the vCPU and a
 * PCPU register file (the KVM structs, the XSAVE area, the MSRs; regs, sregs and
 * events through kvm_run's sync regs where the host has them), and flush.
 *
 * The x86_64 layout is byte-compatible with KVM's userspace structs group by
 * group, so pull and push are the KVM ioctls plus plain copies: no per-register
 * code.  MSRs the host lacks (KVM_GET_MSR_INDEX_LIST) are marked absent and
 * never sent; their words stay as they are in the register file.
 * (kvm_internal.h says how the KVM backend's files divide it.)
 */
#include "kvm_internal.h"

#ifdef HAVE_KVM

/* The groups that are one KVM struct each, in push order (the mode - SREGS,
 * XCRS - before what is read in it).  XSAVE and the MSRs need more than one
 * copy and are handled beside the table.  `sync`: carried in kvm_run by
 * KVM_CAP_SYNC_REGS where the host has it (no ioctl).  `cpl3_fixed`: guest
 * code at CPL 3 cannot change it - XSETBV, MOV DR and WRMSR are privileged (#GP)
 * and DR6 changes only as a #DB is delivered, which a guest without an IDT does
 * not survive - so after such a guest ran, KVM still holds what was pushed. */
const struct kvm_part kvm_parts[] = {
    {"sregs", "SREGS", KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), KVM_SYNC_X86_SREGS, 0, 0},
    {"xcrs", "XCRS", KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), 0, 1, 0},
    {"regs", "REGS", KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), KVM_SYNC_X86_REGS, 0, 0},
    {"debugregs", "DEBUGREGS", KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs), 0, 1, 0},
    {"events", "VCPU_EVENTS", KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, sizeof(struct kvm_vcpu_events), KVM_SYNC_X86_EVENTS, 0, 0},
    /* CPL 3 code reaches the LAPIC neither through MMIO (its page tables do not map it) nor x2APIC MSRs */
    {"lapic", "LAPIC", KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state), 0, 1, 1},
};
_Static_assert(sizeof(kvm_parts) / sizeof(kvm_parts[0]) == NPARTS, "NPARTS counts the table");

/* The MSR request: the layout's records for the MSRs this host has. */
uint32_t kvm_msr_request(struct vsw_kvm *k, const uint8_t *regs)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < k->nmsrs; i++)
        if (k->info.msr_present & (1ull << i))
            memcpy(&k->msrs.e[n++], regs + k->g_msrs + MSR_REC * i, MSR_REC);
    k->msrs.hdr.nmsrs = n;
    return n;
}

/* Copies a pulled group into the register file if it changed, marking it dirty. */
static void take(struct vsw_pcpu *p, uint32_t off, const void *src, uint32_t len)
{
    if (memcmp(p->regs + off, src, len)) {
        memcpy(p->regs + off, src, len);
        p->dirty |= vsw_group_mask_of(p->L, off, len);
    }
}

static void *sync_area(struct vsw_kvm *k, uint32_t sync)
{
    return sync == KVM_SYNC_X86_REGS ? (void *)&k->run->s.regs.regs
         : sync == KVM_SYNC_X86_SREGS ? (void *)&k->run->s.regs.sregs : (void *)&k->run->s.regs.events;
}

/* After KVM_RUN: what the guest may have changed is no longer known to be held. */
void kvm_ran(struct vsw_kvm *k)
{
    uint32_t fixed = HELD_MSRS;
    for (size_t i = 0; i < NPARTS; i++)
        if (kvm_parts[i].cpl3_fixed)
            fixed |= 1u << i;
    k->held &= k->cpl3 ? fixed : 0;
    k->sync_fresh = k->sync != 0;
}

/* Takes what KVM holds as known: its copy in the shadow, its bit in `held`. */
static void hold(struct vsw_kvm *k, uint32_t bit, uint32_t off, const void *src, uint32_t len)
{
    if (k->shadow + off != src)
        memcpy(k->shadow + off, src, len);
    k->held |= bit;
}

/* The XSAVE area into the register file, component by component, so only the
 * ones that changed are dirty: -errno (or -1 with errno set by the ioctl). */
static int pull_xsave(struct vsw_kvm *k, struct vsw_pcpu *p)
{
    if (!(k->held & HELD_XSAVE)) {
        if (ioctl(k->vcpu_fd, k->get_xsave, k->xsave) < 0)
            return err();
        int r = vsw_xsave_pull(&k->info.xsave, k->xsave->region, k->info.xsave_size, k->shadow + k->g_xsave);
        if (r < 0)
            return r;
        k->held |= HELD_XSAVE;
    }
    for (uint32_t g = 0; g < p->L->ngroups; g++) {
        const struct vsw_group_info *gi = &p->L->groups[g];
        if (gi->offset >= k->g_xsave && gi->offset < k->g_xsave + k->xsave_span && gi->used)
            take(p, gi->offset, k->shadow + gi->offset, gi->used);
    }
    return 0;
}

/* The MSRs the host has into the register file, record by record. */
static int pull_msrs(struct vsw_kvm *k, struct vsw_pcpu *p)
{
    if (!(k->held & HELD_MSRS)) {
        uint32_t n = kvm_msr_request(k, p->regs);
        if (n && ioctl(k->vcpu_fd, KVM_GET_MSRS, &k->msrs) != (int)n)
            return err();
        for (uint32_t i = 0, j = 0; i < k->nmsrs; i++)
            if (k->info.msr_present & (1ull << i))
                memcpy(k->shadow + k->g_msrs + MSR_REC * i, &k->msrs.e[j++], MSR_REC);
        k->held |= HELD_MSRS;
    }
    for (uint32_t i = 0; i < k->nmsrs; i++)
        if (k->info.msr_present & (1ull << i))
            take(p, k->g_msrs + MSR_REC * i, k->shadow + k->g_msrs + MSR_REC * i, MSR_REC);
    return 0;
}

int vsw_kvm_pull(struct vsw_kvm *k, struct vsw_pcpu *p) { return kvm_pull_for(k, p, 0); }

/* vsw_kvm_pull into the register file of machine `owner` only (0: whichever runs):
 * -ESRCH, nothing touched, when another machine is on the PCPU. */
int kvm_pull_for(struct vsw_kvm *k, struct vsw_pcpu *p, uint64_t owner)
{
    if (!k || !p || p->L->id != VSW_LAYOUT_X86_64)
        return -EINVAL;
    if (kvm_vcpu_gone(k))
        return -ENXIO;
    if (k->io_pending)
        return -EBUSY;          /* the guest's access is not complete: its state is not whole */
    int r = vsw_pcpu_enter_running(p);
    if (r < 0)
        return r;
    if (owner && p->owner != owner) {
        vsw_pcpu_leave(p);
        return -ESRCH;          /* someone else switched the PCPU: the vCPU's state is not its machine's */
    }
    for (size_t i = 0; i < NPARTS && r == 0; i++) {
        if (kvm_parts[i].lapic && !k->lapic)
            continue;           /* absent on this host: kept as it is */
        const void *src = k->shadow + k->part_off[i];
        if (k->sync_fresh && (k->sync & kvm_parts[i].sync))
            src = sync_area(k, kvm_parts[i].sync);
        else if (!(k->held & (1u << i))) {
            if (ioctl(k->vcpu_fd, kvm_parts[i].get, &k->scratch) < 0) {
                r = err();
                break;
            }
            src = &k->scratch;
        }
        take(p, k->part_off[i], src, kvm_parts[i].size);
        hold(k, 1u << i, k->part_off[i], src, kvm_parts[i].size);
    }
    if (r == 0)
        r = pull_xsave(k, p);
    if (r == 0)
        r = pull_msrs(k, p);
    vsw_pcpu_leave(p);
    return r;
}

static int is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/* Whether KVM already holds these bytes of the register file. */
static int held_same(const struct vsw_kvm *k, uint32_t bit, const uint8_t *R, uint32_t off, uint32_t len)
{
    return (k->held & bit) && !memcmp(R + off, k->shadow + off, len);
}

/* One part of the context into the vCPU, unless KVM holds exactly it already:
 * through kvm_run where KVM_CAP_SYNC_REGS carries it, else by its ioctl.  0, or
 * -1 with errno set. */
static int push_part(struct vsw_kvm *k, size_t i, const uint8_t *R)
{
    const void *src = R + k->part_off[i];
    if (kvm_parts[i].lapic && is_zero(src, kvm_parts[i].size))
        src = &k->lapic_reset;  /* a context that never ran on a LAPIC starts from the reset state */
    if (kvm_parts[i].set == KVM_SET_VCPU_EVENTS) {
        /* a context from before (or a reset state) sets these too: nothing pending stays behind */
        struct kvm_vcpu_events *ev = &k->scratch.events;
        memcpy(ev, src, sizeof(*ev));
        ev->flags |= k->events_flags;
        src = ev;
    }
    int in_run = (k->sync & kvm_parts[i].sync) != 0;
    if ((k->held & (1u << i)) && !memcmp(src, k->shadow + k->part_off[i], kvm_parts[i].size) &&
        (!in_run || k->sync_fresh))
        return 0;               /* KVM holds exactly this (and kvm_run shows it) */
    if (in_run) {
        memcpy(sync_area(k, kvm_parts[i].sync), src, kvm_parts[i].size);   /* applied as KVM_RUN enters */
        k->run->kvm_dirty_regs |= kvm_parts[i].sync;
    } else if (ioctl(k->vcpu_fd, kvm_parts[i].set, src) < 0) {
        return -1;
    }
    hold(k, 1u << i, k->part_off[i], src, kvm_parts[i].size);
    return 0;
}

/* The MSRs into the vCPU, unless KVM holds them: -EINVAL naming the one KVM refused. */
static int push_msrs(struct vsw_kvm *k, const uint8_t *R)
{
    if (held_same(k, HELD_MSRS, R, k->g_msrs, MSR_REC * k->nmsrs))
        return 0;
    uint32_t n = kvm_msr_request(k, R);
    int done = n ? ioctl(k->vcpu_fd, KVM_SET_MSRS, &k->msrs) : 0;
    if (done != (int)n) {
        /* KVM sets them in order and stops at the one it refuses */
        k->refused_msr = done >= 0 && (uint32_t)done < n ? k->msrs.e[done].index : 0;
        k->held = 0;
        return -EINVAL;
    }
    hold(k, HELD_MSRS, k->g_msrs, R + k->g_msrs, MSR_REC * k->nmsrs);
    return 0;
}

int vsw_kvm_push(struct vsw_kvm *k, struct vsw_pcpu *p)
{
    if (!k || !p || p->L->id != VSW_LAYOUT_X86_64)
        return -EINVAL;
    if (kvm_vcpu_gone(k))
        return -ENXIO;
    if (k->io_pending)
        return -EBUSY;          /* KVM would complete that access into the state pushed */
    int r = vsw_pcpu_enter_running(p);
    if (r < 0)
        return r;
    const uint8_t *R = p->regs;
    /* translated before anything is set: a context this host cannot hold changes nothing */
    int xsave = !held_same(k, HELD_XSAVE, R, k->g_xsave, k->xsave_span);
    if (xsave && (r = vsw_xsave_push(&k->info.xsave, R + k->g_xsave, k->xsave->region, k->info.xsave_size)) < 0)
        goto out;
    const struct kvm_sregs *sr = (const struct kvm_sregs *)(R + k->part_off[0]);
    k->cpl3 = sr->cs.dpl == 3 && sr->ss.dpl == 3;
    for (size_t i = 0; i < NPARTS; i++) {
        if (i == MODE_PARTS && xsave) {     /* the mode is set: now the XSAVE area */
            if (ioctl(k->vcpu_fd, KVM_SET_XSAVE, k->xsave) < 0)
                goto fail;
            hold(k, HELD_XSAVE, k->g_xsave, R + k->g_xsave, k->xsave_span);
        }
        if ((!kvm_parts[i].lapic || k->lapic) && push_part(k, i, R) < 0)
            goto fail;
    }
    if ((r = push_msrs(k, R)) < 0)
        goto out;
    k->sync_fresh = k->sync != 0;
    goto out;
fail:
    r = err();
    k->held = 0;                /* partly set: nothing is known to be held */
out:
    vsw_pcpu_leave(p);
    return r;
}

uint32_t vsw_kvm_refused_msr(const struct vsw_kvm *k) { return k ? k->refused_msr : 0; }

int vsw_kvm_flush(struct vsw_kvm *k)
{
    if (!k)
        return -EINVAL;
    if (kvm_vcpu_gone(k))
        return -ENXIO;
    if (k->io_pending)
        return -EBUSY;          /* vsw_kvm_complete first: the guest's access decides its state */
    if (k->run->kvm_dirty_regs) {
        /* enter and leave at once: KVM applies the sync regs on the way in */
        k->run->immediate_exit = 1;
        int rc = ioctl(k->vcpu_fd, KVM_RUN, 0);
        int saved = errno;
        k->run->immediate_exit = 0;
        if (rc < 0 && saved != EINTR)
            return -saved;
    }
    k->held = 0;
    k->sync_fresh = 0;
    return 0;
}


#endif /* HAVE_KVM */
