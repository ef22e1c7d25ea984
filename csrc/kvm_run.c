/*
 * kvm_run.c - the KVM backend's run: the kick, entering the guest, decoding its
 * exit; vsw_kvm_run, vsw_kvm_complete, the slice loop and the calibration guest.
 *
 * Preemption: a per-vCPU POSIX timer sends a real-time signal to the thread
 * that runs the vCPU.  The signal is blocked in that thread and unblocked only
 * inside KVM_RUN (KVM_SET_SIGNAL_MASK), so a kick that fires before the thread
 * is in KVM_RUN stays pending and ends the next KVM_RUN at its entry: it cannot
 * be lost.  After each run the pending kick is taken (sigtimedwait), so a stale
 * one never ends the next slice early.
 * Device exits: an MMIO or PIO exit is complete only once KVM_RUN is entered
 * again (KVM finishes the instruction then); until then the vCPU refuses pull
 * and push (-EBUSY), and vsw_kvm_complete() enters it with immediate_exit set,
 * which completes the access - or hands back the next fragment of a split one -
 * without running another instruction.  The device page answers only at its
 * registers, at their width and direction; any other access is a BAD_IO exit
 * (writes dropped, reads return 0) for the caller to treat as the guest's fault.
 * (kvm_internal.h says how the KVM backend's files divide it.)
 */
#include "kvm_internal.h"

#ifdef HAVE_KVM

/* The device registers: where, how wide, which way (vsw_guest_abi.h). */
static const struct reg {
    uint32_t off;
    uint8_t len, write;
} device_regs[] = {
    {VSW_REG_RESULT_LO, 4, 1}, {VSW_REG_RESULT_HI, 4, 1}, {VSW_REG_PROGRESS, 4, 1}, {VSW_REG_DONE, 4, 1},
    {VSW_REG_CONSOLE_ADDR, 8, 1}, {VSW_REG_CONSOLE_LEN, 4, 1}, {VSW_REG_EXIT, 4, 1}, {VSW_REG_CLOCK, 8, 0},
    {VSW_REG_FAULT, 4, 1}, {VSW_REG_SYSCALL, 4, 1},
};

/* This thread's signal mask with the kick blocked, and the vCPU's mask for
 * KVM_RUN the same but with the kick unblocked: a kick that fires outside
 * KVM_RUN waits, pending, and ends the next KVM_RUN as it enters. */
static int mask_kick(struct vsw_kvm *k)
{
    sigset_t kick, old;
    sigemptyset(&kick);
    sigaddset(&kick, KICK_SIGNAL);
    int r = pthread_sigmask(SIG_BLOCK, &kick, &old);
    if (r)
        return -r;
    sigdelset(&old, KICK_SIGNAL);
    struct {
        struct kvm_signal_mask hdr;
        uint8_t set[8];         /* the kernel's sigset_t: 64 signals */
    } m = {.hdr = {.len = 8}};
    memcpy(m.set, &old, 8);
    if (ioctl(k->vcpu_fd, KVM_SET_SIGNAL_MASK, &m) < 0)
        return err();
    k->masked = 1;
    return 0;
}

/* Takes a kick that is pending (it fired after KVM_RUN returned, or ended it):
 * the next run starts with none. */
static void drain_kick(void)
{
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, KICK_SIGNAL);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&kick, NULL, &zero) == KICK_SIGNAL)
        ;
}

static int arm(struct vsw_kvm *k, uint64_t ns)
{
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (!k->have_timer || k->timer_tid != tid) {
        if (k->have_timer)
            timer_delete(k->timer);
        k->have_timer = 0;
        k->masked = 0;
        struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = KICK_SIGNAL};
        ev._sigev_un._tid = tid;
        if (timer_create(CLOCK_MONOTONIC, &ev, &k->timer) < 0)
            return err();
        k->have_timer = 1;
        k->timer_tid = tid;
    }
    if (!k->masked) {
        int r = mask_kick(k);
        if (r < 0)
            return r;
        drain_kick();
    }
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)}};
    return timer_settime(k->timer, 0, &its, NULL) < 0 ? err() : 0;
}

static void disarm(struct vsw_kvm *k)
{
    struct itimerspec off = {{0, 0}, {0, 0}};
    timer_settime(k->timer, 0, &off, NULL);
    drain_kick();
}

/* The device register an MMIO access names, if it is exactly one (its offset,
 * width and direction): NULL for anything else. */
static const struct reg *device_reg(uint64_t gpa, uint32_t len, int write)
{
    if (gpa < VSW_MMIO || gpa - VSW_MMIO >= DEVICE_WINDOW)
        return NULL;
    for (size_t i = 0; i < sizeof(device_regs) / sizeof(device_regs[0]); i++)
        if (device_regs[i].off == gpa - VSW_MMIO)
            return device_regs[i].len == len && device_regs[i].write == !!write ? &device_regs[i] : NULL;
    return NULL;
}

/* What the guest did to exit, in the backend's terms: a device register it
 * wrote or read (an MMIO read completes before the next KVM_RUN), an access the
 * device does not answer, a halt, a shutdown, or something else. */
static void decode_exit(struct vsw_kvm *k, struct vsw_kvm_exit *x)
{
    x->kvm_reason = k->run->exit_reason;
    k->read_pending = 0;
    k->io_pending = 0;
    switch (k->run->exit_reason) {
    case KVM_EXIT_IO: {
        /* the ABI has no I/O ports (a CPL 3 guest cannot reach one): refused */
        x->reason = VSW_KVM_EXIT_BAD_IO;
        x->port = k->run->io.port;
        x->reg = VSW_KVM_NO_REG;
        x->size = k->run->io.size;
        x->write = k->run->io.direction == KVM_EXIT_IO_OUT;
        x->addr = k->run->io.port;
        uint32_t v = 0;
        if (x->write)
            memcpy(&v, (uint8_t *)k->run + k->run->io.data_offset, k->run->io.size <= 4 ? k->run->io.size : 4);
        else        /* an IN (of any count) reads zeros */
            memset((uint8_t *)k->run + k->run->io.data_offset, 0, (size_t)k->run->io.size * k->run->io.count);
        x->data = v;
        k->io_pending = 1;
        break;
    }
    case KVM_EXIT_MMIO: {
        uint32_t len = k->run->mmio.len <= 8 ? k->run->mmio.len : 8;
        const struct reg *r = device_reg(k->run->mmio.phys_addr, len, k->run->mmio.is_write);
        x->reason = r ? VSW_KVM_EXIT_IO : VSW_KVM_EXIT_BAD_IO;
        x->addr = k->run->mmio.phys_addr;
        x->reg = r ? (uint16_t)(r->off / 4) : VSW_KVM_NO_REG;
        x->size = (uint8_t)k->run->mmio.len;
        x->write = k->run->mmio.is_write;
        memcpy(&x->data, k->run->mmio.data, len);
        if (!x->write)
            memset(k->run->mmio.data, 0, sizeof(k->run->mmio.data));     /* reads return 0 unless completed */
        k->read_pending = r && !x->write;
        k->io_pending = 1;
        break;
    }
    case KVM_EXIT_HLT:
        x->reason = VSW_KVM_EXIT_HLT;
        break;
    case KVM_EXIT_INTR:
        x->reason = VSW_KVM_EXIT_PREEMPTED;
        break;
    case KVM_EXIT_SHUTDOWN:
        x->reason = VSW_KVM_EXIT_SHUTDOWN;
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        x->reason = VSW_KVM_EXIT_OTHER;
        x->data = k->run->internal.suberror;
        break;
    default:
        x->reason = VSW_KVM_EXIT_OTHER;
    }
}

/* One KVM_RUN (immediate: enter only to complete what is pending), its exit decoded. */
static int enter(struct vsw_kvm *k, int immediate, struct vsw_kvm_exit *x)
{
    *x = (struct vsw_kvm_exit){.reg = VSW_KVM_NO_REG};
    k->run->immediate_exit = (uint8_t)immediate;
    uint64_t t0 = now_ns();
    int rc = ioctl(k->vcpu_fd, KVM_RUN, 0);
    int saved = errno;
    x->run_ns = now_ns() - t0;
    k->run->immediate_exit = 0;
    kvm_ran(k);
    k->read_pending = 0;
    if (rc < 0) {
        if (saved == EINTR || saved == EAGAIN) {
            /* KVM completed what was pending before it looked at the signal or the flag */
            k->io_pending = 0;
            x->reason = VSW_KVM_EXIT_PREEMPTED;
            return 0;
        }
        return -saved;
    }
    decode_exit(k, x);
    return 0;
}

int vsw_kvm_run(struct vsw_kvm *k, uint64_t slice_ns, struct vsw_kvm_exit *x)
{
    if (!k || !x || slice_ns == 0)
        return -EINVAL;
    if (kvm_vcpu_gone(k))
        return -ENXIO;
    int r = arm(k, slice_ns);
    if (r < 0)
        return r;
    r = enter(k, 0, x);
    disarm(k);
    return r;
}

int vsw_kvm_complete(struct vsw_kvm *k, struct vsw_kvm_exit *x)
{
    if (!k || !x)
        return -EINVAL;
    if (kvm_vcpu_gone(k))
        return -ENXIO;
    if (!k->io_pending)
        return 0;
    int r = enter(k, 1, x);
    if (r < 0)
        return r;
    return x->reason == VSW_KVM_EXIT_PREEMPTED ? 0 : 1;
}

/* The slice loop (vsw.h): run, and on the timer's exit switch to the next
 * context and run again, until an exit the caller must see. */
int vsw_kvm_loop(struct vsw_kvm *k, struct vsw_pcpu *p, struct vsw_ctx *const *ctxs, uint32_t n,
                 uint32_t current, struct vsw_kvm_loop *L)
{
    if (!k || !p || !ctxs || !L || n == 0 || current >= n || L->slice_ns == 0 || L->max_slices == 0 ||
        !L->own_ns || !L->slices_of)
        return -EINVAL;
    for (uint32_t i = 0; i < n; i++)
        if (!ctxs[i])
            return -EINVAL;
    if (kvm_vcpu_gone(k))
        return -ENXIO;
    if (k->io_pending && !L->complete_first)
        return -EBUSY;
    uint8_t *in_end = (uint8_t *)&L->stopped;
    memset(in_end, 0, sizeof(*L) - (size_t)(in_end - (uint8_t *)L));
    L->current = current;
    uint64_t start = now_ns();
    int pending_switch = L->switch_first != 0;
    /* the slice in progress: its age at the start of this call (0: a fresh one) */
    uint64_t age = pending_switch ? 0 : L->resume_ns;
    struct vsw_switch_stats st;
    if (k->io_pending) {
        /* the access ends inside the guest that made it, before anything else */
        int r = enter(k, 1, &L->exit);
        if (r < 0)
            return r;
        if (L->exit.reason != VSW_KVM_EXIT_PREEMPTED) {
            L->stopped = VSW_KVM_STOP_EXIT;     /* the next part of a split access: the caller's again */
            L->used_ns = age;
            return 0;
        }
        L->exit = (struct vsw_kvm_exit){0};
    }
    if (age && age >= L->slice_ns) {
        /* its time went in device accesses: the slice is over without another run */
        L->slices_of[current]++;
        if (L->took_ns)
            L->took_ns[L->preempted] = age;
        L->preempted++;
        age = 0;
        pending_switch = 1;
        if (++L->slices >= L->max_slices || (L->max_ns && now_ns() - start >= L->max_ns))
            return 0;           /* STOP_BUDGET */
    }
    for (;;) {
        uint32_t next = (current + 1) % n;
        if (pending_switch && next != current) {
            uint64_t t = now_ns();
            /* only into ctxs[current]'s register file: if another caller switched the PCPU
             * meanwhile, the vCPU's state is not the running machine's (STOP_REFUSED, -ESRCH) */
            int r = kvm_pull_for(k, p, ctxs[current]->owner);
            uint64_t t1 = now_ns();
            L->pull_ns += t1 - t;
            if (r == 0)
                r = vsw_switch(p, ctxs[current], ctxs[next], &st);
            uint64_t t2 = now_ns();
            L->switch_ns += t2 - t1;
            if (r < 0) {
                L->stopped = VSW_KVM_STOP_REFUSED;
                L->r = r;
                return 0;       /* nothing of it happened: `current` is still on the PCPU and the vCPU */
            }
            current = L->current = next;
            L->switches++;
            L->save_units += st.save_units;
            L->load_units += st.load_units;
            L->paths[st.path & 1]++;
            r = vsw_kvm_push(k, p);
            L->push_ns += now_ns() - t2;
            if (r < 0) {
                L->stopped = VSW_KVM_STOP_UNPUSHED;
                L->r = r;
                return 0;       /* the switch is done: the caller pushes once the PCPU is open again */
            }
        }
        pending_switch = 1;
        uint64_t t0 = now_ns();
        int r = arm(k, L->slice_ns - age);
        if (r < 0)
            return r;
        r = enter(k, 0, &L->exit);
        disarm(k);
        if (r < 0)
            return r;
        uint64_t took = now_ns() - t0 + age;
        age = 0;
        if (L->exit.reason != VSW_KVM_EXIT_PREEMPTED) {
            L->stopped = VSW_KVM_STOP_EXIT;
            L->used_ns = took;
            return 0;
        }
        L->guest_ns += L->exit.run_ns;
        L->own_ns[current] += L->exit.run_ns;
        L->slices_of[current]++;
        if (L->took_ns)
            L->took_ns[L->preempted] = took;
        L->preempted++;
        if (++L->slices >= L->max_slices || (L->max_ns && now_ns() - start >= L->max_ns))
            return 0;           /* STOP_BUDGET */
    }
}

int vsw_kvm_calibrate(struct vsw_kvm *k, uint64_t slice_ns, uint32_t n, uint64_t *took_ns)
{
    if (!k || !took_ns || n == 0 || slice_ns == 0)
        return -EINVAL;
    if (kvm_vcpu_gone(k))
        return -ENXIO;
    if (k->io_pending)
        return -EBUSY;
    /* the calibration guest at CPL 3 in 64-bit mode, nothing pending */
    struct kvm_sregs sr;
    if (ioctl(k->vcpu_fd, KVM_GET_SREGS, &sr) < 0)
        return err();
    k->held = 0;                /* from here the vCPU holds no context */
    k->sync_fresh = 0;
    k->run->kvm_dirty_regs = 0;
    struct kvm_segment code = {.base = 0, .limit = 0xffffffff, .selector = 0x2b, .type = 11, .present = 1,
                               .dpl = 3, .s = 1, .l = 1, .g = 1};
    struct kvm_segment data = {.base = 0, .limit = 0xffffffff, .selector = 0x23, .type = 3, .present = 1,
                               .dpl = 3, .db = 1, .s = 1, .g = 1};
    sr.cs = code;
    sr.ds = sr.es = sr.fs = sr.gs = sr.ss = data;
    sr.tr = (struct kvm_segment){.limit = 0x67, .selector = 0x18, .type = 11, .present = 1};
    sr.ldt = (struct kvm_segment){.type = 2, .present = 1, .unusable = 1};
    sr.cr0 = 0x80050033, sr.cr3 = CAL_GPA, sr.cr4 = 0x620, sr.efer = 0x500;
    memset(sr.interrupt_bitmap, 0, sizeof(sr.interrupt_bitmap));
    struct kvm_regs regs = {.rip = CAL_CODE, .rflags = 2};
    struct kvm_vcpu_events ev = {.flags = k->events_flags};
    if (ioctl(k->vcpu_fd, KVM_SET_SREGS, &sr) < 0 || ioctl(k->vcpu_fd, KVM_SET_REGS, &regs) < 0 ||
        ioctl(k->vcpu_fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
        return err();
    int r = 0;
    struct vsw_kvm_exit x;
    for (uint32_t i = 0; i < n && r == 0; i++) {
        uint64_t t0 = now_ns();
        if ((r = arm(k, slice_ns)) < 0)
            break;
        r = enter(k, 0, &x);
        disarm(k);
        took_ns[i] = now_ns() - t0;
        if (r == 0 && x.reason != VSW_KVM_EXIT_PREEMPTED)
            r = -EIO;           /* `jmp .` only stops when preempted */
    }
    k->held = 0;
    k->sync_fresh = 0;
    return r;
}

int vsw_kvm_complete_read(struct vsw_kvm *k, uint64_t value)
{
    if (!k || !k->read_pending)
        return -EINVAL;         /* a reset forgets the read: none pending on a vCPU that is gone */
    uint32_t len = k->run->mmio.len <= 8 ? k->run->mmio.len : 8;
    memcpy(k->run->mmio.data, &value, len);
    return 0;
}


#endif /* HAVE_KVM */
