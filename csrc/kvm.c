/*
 * kvm.c - a PCPU backed by a real KVM vCPU.
 *
 * The x86_64 layout is byte-compatible with KVM's userspace structs group by
 * group, so pull and push are the KVM ioctls plus plain copies: no per-register
 * code.  MSRs the host lacks (KVM_GET_MSR_INDEX_LIST) are marked absent and
 * never sent; their words stay as they are in the register file.
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
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vsw_internal.h"
#include "vsw_guest_abi.h"
#include <string.h>

#if defined(__linux__) && defined(__x86_64__) && defined(__has_include)
#if __has_include(<linux/kvm.h>)
#define HAVE_KVM 1
#endif
#endif

#ifdef HAVE_KVM
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSRS 64          /* records the layout's MSR group may hold (its size says how many) */
#define KICK_SIGNAL (SIGRTMAX - 3)
#define DEVICE_WINDOW (2u << 20)     /* the guests map the device page as one 2 MiB page */
/* the calibration guest: page tables and a `jmp .` in a memslot of its own, past
 * the device window, which no guest's page tables map */
#define CAL_GPA (VSW_MMIO + DEVICE_WINDOW)
#define CAL_PAGES 5
#define CAL_CODE (CAL_GPA + 4 * 4096ull)

/* The device registers: where, how wide, which way (vsw_guest_abi.h). */
static const struct reg {
    uint32_t off;
    uint8_t len, write;
} device_regs[] = {
    {VSW_REG_RESULT_LO, 4, 1}, {VSW_REG_RESULT_HI, 4, 1}, {VSW_REG_PROGRESS, 4, 1}, {VSW_REG_DONE, 4, 1},
    {VSW_REG_CONSOLE_ADDR, 8, 1}, {VSW_REG_CONSOLE_LEN, 4, 1}, {VSW_REG_EXIT, 4, 1}, {VSW_REG_CLOCK, 8, 0},
    {VSW_REG_FAULT, 4, 1}, {VSW_REG_SYSCALL, 4, 1},
};

/* The groups that are one KVM struct each, in push order (the mode - SREGS,
 * XCRS - before what is read in it).  XSAVE and the MSRs need more than one
 * copy and are handled beside the table.  `sync`: carried in kvm_run by
 * KVM_CAP_SYNC_REGS where the host has it (no ioctl).  `cpl3_fixed`: guest
 * code at CPL 3 cannot change it - XSETBV, MOV DR and WRMSR are privileged (#GP)
 * and DR6 changes only as a #DB is delivered, which a guest without an IDT does
 * not survive - so after such a guest ran, KVM still holds what was pushed. */
static const struct part {
    const char *group;
    const char *ioctl;      /* KVM_GET_<ioctl> / KVM_SET_<ioctl> */
    unsigned long get, set;
    uint32_t size;
    uint32_t sync;
    int cpl3_fixed;
    int lapic;              /* only with an in-kernel local APIC */
} parts[] = {
    {"sregs", "SREGS", KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), KVM_SYNC_X86_SREGS, 0, 0},
    {"xcrs", "XCRS", KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), 0, 1, 0},
    {"regs", "REGS", KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), KVM_SYNC_X86_REGS, 0, 0},
    {"debugregs", "DEBUGREGS", KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs), 0, 1, 0},
    {"events", "VCPU_EVENTS", KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, sizeof(struct kvm_vcpu_events), KVM_SYNC_X86_EVENTS, 0, 0},
    /* CPL 3 code reaches the LAPIC neither through MMIO (its page tables do not map it) nor x2APIC MSRs */
    {"lapic", "LAPIC", KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state), 0, 1, 1},
};
#define NPARTS (sizeof(parts) / sizeof(parts[0]))
#define MODE_PARTS 2        /* sregs and xcrs go before XSAVE */
/* bits of `held`: the parts by index, then the XSAVE area (any guest changes it)
 * and the MSRs (WRMSR is privileged: fixed at CPL 3) */
#define HELD_XSAVE (1u << NPARTS)
#define HELD_MSRS (1u << (NPARTS + 1))

struct vsw_kvm {
    int sys_fd, vm_fd, vcpu_fd;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *mem;
    uint64_t mem_bytes;
    struct vsw_kvm_info info;
    /* offsets in the x86_64 register file: of parts[i], of the XSAVE area, of the MSRs */
    uint32_t part_off[NPARTS], g_xsave, g_msrs;
    uint32_t xsave_span;        /* bytes of the layout's XSAVE region (up to the XCRS group) */
    struct kvm_xsave *xsave;    /* KVM's buffer, in the host's layout (info.xsave) */
    unsigned long get_xsave;    /* KVM_GET_XSAVE2 where the area is larger than 4 KiB, else KVM_GET_XSAVE */
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[MAX_MSRS];
    } msrs;
    uint32_t nmsrs;             /* records in the layout's MSR group */
    int lapic;                  /* an in-kernel local APIC (split irqchip) */
    struct kvm_lapic_state lapic_reset;     /* a fresh vCPU's, for a context that holds none yet */
    union {                     /* a pulled part before it is compared: the largest of the table's structs */
        struct kvm_sregs sregs;
        struct kvm_xcrs xcrs;
        struct kvm_regs regs;
        struct kvm_debugregs debugregs;
        struct kvm_vcpu_events events;
        struct kvm_lapic_state lapic;
    } scratch;
    /* what KVM holds, in the layout's form, for the groups whose bit is set in
     * `held`: a push skips what is already there, a pull what cannot have changed */
    uint8_t shadow[VSW_MAX_CONTEXT];
    uint32_t held;
    uint32_t sync;              /* KVM_SYNC_X86_* this host carries in kvm_run */
    int sync_fresh;             /* kvm_run's sync regs are what KVM holds (after an exit, or a push) */
    int cpl3;                   /* the state pushed last runs at CPL 3 */
    timer_t timer;
    pid_t timer_tid;
    int have_timer;
    int masked;                 /* KVM_SET_SIGNAL_MASK done for this vCPU and timer_tid's mask */
    int read_pending;           /* an MMIO read exited: its value goes in before the next KVM_RUN */
    int io_pending;             /* an MMIO/PIO exit KVM completes at the next KVM_RUN: no pull or push before */
    uint8_t *cal;               /* the calibration guest's memslot */
    int next_vcpu_id;           /* KVM frees a vCPU only with its VM: a reset takes the next id */
    uint32_t events_flags;      /* VCPU_EVENTS state this VM carries (payload, triple fault): always set */
    uint32_t refused_msr;       /* the index of the MSR the last push could not set */
};

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int err(void) { return -(errno ? errno : EIO); }

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

static int set_cpuid(struct vsw_kvm *k)
{
    int n = 128;
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
    if (!c)
        return -ENOMEM;
    c->nent = n;
    int r = ioctl(k->sys_fd, KVM_GET_SUPPORTED_CPUID, c);
    if (r == 0) {
        /* leaf 0xD: which XSAVE components exist here, and where this host puts them */
        struct vsw_xsave_map *m = &k->info.xsave;
        for (uint32_t i = 0; i < c->nent; i++) {
            const struct kvm_cpuid_entry2 *e = &c->entries[i];
            if (e->function != 0xd)
                continue;
            if (e->index == 0) {
                k->info.supported_xcr0 = e->eax | ((uint64_t)e->edx << 32);
                m->size = e->ecx;
            } else if (e->index >= 2 && e->index < VSW_XSAVE_COMPONENTS) {
                m->offset[e->index] = e->ebx;
                m->csize[e->index] = e->eax;
            }
        }
        m->xcr0 = k->info.supported_xcr0 & vsw_xsave_known();
        if ((m->xcr0 & 0x18) != 0x18)
            m->xcr0 &= ~0x18ull;        /* MPX is both components or neither */
        r = ioctl(k->vcpu_fd, KVM_SET_CPUID2, c);
    }
    r = r < 0 ? err() : 0;
    free(c);
    return r;
}

static int msr_list(struct vsw_kvm *k)
{
    const struct vsw_layout_def *L = vsw_layout_get(VSW_LAYOUT_X86_64);
    uint8_t reset[VSW_MAX_CONTEXT];
    memset(reset, 0, sizeof(reset));
    L->reset(reset);
    struct kvm_msr_list probe = {.nmsrs = 0};
    ioctl(k->sys_fd, KVM_GET_MSR_INDEX_LIST, &probe);     /* E2BIG, with the count */
    struct kvm_msr_list *list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
    if (!list)
        return -ENOMEM;
    list->nmsrs = probe.nmsrs;
    if (ioctl(k->sys_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
        free(list);
        return err();
    }
    k->info.host_msrs = list->nmsrs;
    for (uint32_t i = 0; i < k->nmsrs; i++) {
        uint32_t index;
        memcpy(&index, reset + k->g_msrs + 16 * i, 4);
        for (uint32_t j = 0; j < list->nmsrs; j++)
            if (list->indices[j] == index)
                k->info.msr_present |= 1ull << i;
    }
    free(list);
    return 0;
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
    int r;
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
    if ((r = set_cpuid(k)) < 0 || (!k->xsave && (r = msr_list(k)) < 0))
        return r;
    if ((r = vsw_xsave_map_check(&k->info.xsave)) < 0)
        return r;
    if (!k->xsave) {
        /* XSAVE2 where the host's area is larger (dynamic features): the same layout, more tail */
        int xsize = ioctl(k->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
        k->info.xsave_size = xsize > (int)sizeof(struct kvm_xsave) ? (uint32_t)xsize : sizeof(struct kvm_xsave);
        k->get_xsave = xsize > (int)sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
        k->xsave = calloc(1, k->info.xsave_size);
        if (!k->xsave)
            return -ENOMEM;
    }
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
    munmap(k->run, k->run_size);
    close(k->vcpu_fd);
    k->run = NULL;
    k->vcpu_fd = -1;
    k->read_pending = 0;
    k->io_pending = 0;
    k->masked = 0;              /* the signal mask is the old vCPU's */
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
    return vcpu_create(k);
}

/* Where each part lives in the layout, resolved once by name. */
static int layout_offsets(struct vsw_kvm *k, const struct vsw_layout_def *L)
{
    for (size_t i = 0; i < NPARTS; i++)
        group_offset(L, parts[i].group, &k->part_off[i]);
    group_offset(L, "fpu_sse", &k->g_xsave);
    group_offset(L, "msrs", &k->g_msrs);
    for (uint32_t g = 0; g < L->ngroups; g++)
        if (!strcmp(L->groups[g].name, "msrs"))
            k->nmsrs = L->groups[g].used / 16;
    uint32_t g_xcrs = 0;
    group_offset(L, "xcrs", &g_xcrs);
    k->xsave_span = g_xcrs - k->g_xsave;
    return k->nmsrs > MAX_MSRS ? -E2BIG : 0;
}

/* /dev/kvm, a VM, and `mem_bytes` of guest memory (reserved, not committed) at
 * guest-physical 0. */
static int vm_create(struct vsw_kvm *k, const char *path, uint64_t mem_bytes)
{
    k->sys_fd = open(path ? path : "/dev/kvm", O_RDWR | O_CLOEXEC);
    if (k->sys_fd < 0)
        return err();
    k->info.api_version = ioctl(k->sys_fd, KVM_GET_API_VERSION, 0);
    if (k->info.api_version != KVM_API_VERSION)
        return -EPROTONOSUPPORT;
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
        r = vm_create(k, path, mem_bytes);
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

/* The MSR request: the layout's records for the MSRs this host has. */
static uint32_t msr_request(struct vsw_kvm *k, const uint8_t *regs)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < k->nmsrs; i++)
        if (k->info.msr_present & (1ull << i))
            memcpy(&k->msrs.e[n++], regs + k->g_msrs + 16 * i, 16);
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
static void ran(struct vsw_kvm *k)
{
    uint32_t fixed = HELD_MSRS;
    for (size_t i = 0; i < NPARTS; i++)
        if (parts[i].cpl3_fixed)
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
        uint32_t n = msr_request(k, p->regs);
        if (n && ioctl(k->vcpu_fd, KVM_GET_MSRS, &k->msrs) != (int)n)
            return err();
        for (uint32_t i = 0, j = 0; i < k->nmsrs; i++)
            if (k->info.msr_present & (1ull << i))
                memcpy(k->shadow + k->g_msrs + 16 * i, &k->msrs.e[j++], 16);
        k->held |= HELD_MSRS;
    }
    for (uint32_t i = 0; i < k->nmsrs; i++)
        if (k->info.msr_present & (1ull << i))
            take(p, k->g_msrs + 16 * i, k->shadow + k->g_msrs + 16 * i, 16);
    return 0;
}

int vsw_kvm_pull(struct vsw_kvm *k, struct vsw_pcpu *p)
{
    if (!k || !p || p->L->id != VSW_LAYOUT_X86_64)
        return -EINVAL;
    if (k->io_pending)
        return -EBUSY;          /* the guest's access is not complete: its state is not whole */
    int r = vsw_pcpu_enter_running(p);
    if (r < 0)
        return r;
    for (size_t i = 0; i < NPARTS && r == 0; i++) {
        if (parts[i].lapic && !k->lapic)
            continue;           /* absent on this host: kept as it is */
        const void *src = k->shadow + k->part_off[i];
        if (k->sync_fresh && (k->sync & parts[i].sync))
            src = sync_area(k, parts[i].sync);
        else if (!(k->held & (1u << i))) {
            if (ioctl(k->vcpu_fd, parts[i].get, &k->scratch) < 0) {
                r = err();
                break;
            }
            src = &k->scratch;
        }
        take(p, k->part_off[i], src, parts[i].size);
        hold(k, 1u << i, k->part_off[i], src, parts[i].size);
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
    if (parts[i].lapic && is_zero(src, parts[i].size))
        src = &k->lapic_reset;  /* a context that never ran on a LAPIC starts from the reset state */
    if (parts[i].set == KVM_SET_VCPU_EVENTS) {
        /* a context from before (or a reset state) sets these too: nothing pending stays behind */
        struct kvm_vcpu_events *ev = &k->scratch.events;
        memcpy(ev, src, sizeof(*ev));
        ev->flags |= k->events_flags;
        src = ev;
    }
    int in_run = (k->sync & parts[i].sync) != 0;
    if ((k->held & (1u << i)) && !memcmp(src, k->shadow + k->part_off[i], parts[i].size) &&
        (!in_run || k->sync_fresh))
        return 0;               /* KVM holds exactly this (and kvm_run shows it) */
    if (in_run) {
        memcpy(sync_area(k, parts[i].sync), src, parts[i].size);   /* applied as KVM_RUN enters */
        k->run->kvm_dirty_regs |= parts[i].sync;
    } else if (ioctl(k->vcpu_fd, parts[i].set, src) < 0) {
        return -1;
    }
    hold(k, 1u << i, k->part_off[i], src, parts[i].size);
    return 0;
}

/* The MSRs into the vCPU, unless KVM holds them: -EINVAL naming the one KVM refused. */
static int push_msrs(struct vsw_kvm *k, const uint8_t *R)
{
    if (held_same(k, HELD_MSRS, R, k->g_msrs, 16 * k->nmsrs))
        return 0;
    uint32_t n = msr_request(k, R);
    int done = n ? ioctl(k->vcpu_fd, KVM_SET_MSRS, &k->msrs) : 0;
    if (done != (int)n) {
        /* KVM sets them in order and stops at the one it refuses */
        k->refused_msr = done >= 0 && (uint32_t)done < n ? k->msrs.e[done].index : 0;
        k->held = 0;
        return -EINVAL;
    }
    hold(k, HELD_MSRS, k->g_msrs, R + k->g_msrs, 16 * k->nmsrs);
    return 0;
}

int vsw_kvm_push(struct vsw_kvm *k, struct vsw_pcpu *p)
{
    if (!k || !p || p->L->id != VSW_LAYOUT_X86_64)
        return -EINVAL;
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
        if ((!parts[i].lapic || k->lapic) && push_part(k, i, R) < 0)
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
        x->port = r ? (uint16_t)(r->off / 4) : 0xffff;
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
    *x = (struct vsw_kvm_exit){0};
    k->run->immediate_exit = (uint8_t)immediate;
    uint64_t t0 = now_ns();
    int rc = ioctl(k->vcpu_fd, KVM_RUN, 0);
    int saved = errno;
    x->run_ns = now_ns() - t0;
    k->run->immediate_exit = 0;
    ran(k);
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
    if (k->io_pending)
        return -EBUSY;
    uint8_t *in_end = (uint8_t *)&L->stopped;
    memset(in_end, 0, sizeof(*L) - (size_t)(in_end - (uint8_t *)L));
    L->current = current;
    uint64_t start = now_ns();
    int pending_switch = L->switch_first != 0;
    struct vsw_switch_stats st;
    for (;;) {
        uint32_t next = (current + 1) % n;
        if (pending_switch && next != current) {
            uint64_t t = now_ns();
            int r = vsw_kvm_pull(k, p);
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
        int r = arm(k, L->slice_ns);
        if (r < 0)
            return r;
        r = enter(k, 0, &L->exit);
        disarm(k);
        if (r < 0)
            return r;
        uint64_t took = now_ns() - t0;
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

uint32_t vsw_kvm_refused_msr(const struct vsw_kvm *k) { return k ? k->refused_msr : 0; }

int vsw_kvm_flush(struct vsw_kvm *k)
{
    if (!k)
        return -EINVAL;
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

int vsw_kvm_complete_read(struct vsw_kvm *k, uint64_t value)
{
    if (!k || !k->read_pending)
        return -EINVAL;
    uint32_t len = k->run->mmio.len <= 8 ? k->run->mmio.len : 8;
    memcpy(k->run->mmio.data, &value, len);
    return 0;
}

int vsw_kvm_bench_ioctls(struct vsw_kvm *k, uint64_t iterations, struct vsw_kvm_bench *out)
{
    if (!k || !out || iterations == 0)
        return -EINVAL;
    /* the same ioctls pull and push make: the table's parts, then XSAVE, then the MSRs */
    enum { N = NPARTS + 2 };
    _Static_assert(N <= sizeof(out->names) / sizeof(out->names[0]), "vsw_kvm_bench holds every ioctl");
    unsigned long get[N], set[N];
    const char *name[N];
    for (size_t i = 0; i < NPARTS; i++)
        get[i] = parts[i].get, set[i] = parts[i].set, name[i] = parts[i].ioctl;
    get[NPARTS] = k->get_xsave, set[NPARTS] = KVM_SET_XSAVE, name[NPARTS] = "XSAVE";
    get[NPARTS + 1] = KVM_GET_MSRS, set[NPARTS + 1] = KVM_SET_MSRS, name[NPARTS + 1] = "MSRS";
    size_t each = (k->info.xsave_size + 4095) / 4096 * 4096;
    uint8_t *mem = aligned_alloc(64, N * each);
    if (!mem)
        return -ENOMEM;
    memset(mem, 0, N * each);
    uint8_t reset[VSW_MAX_CONTEXT] = {0};
    vsw_layout_get(VSW_LAYOUT_X86_64)->reset(reset);
    msr_request(k, reset);      /* the MSR request, as pull builds it */
    memcpy(mem + (NPARTS + 1) * each, &k->msrs, sizeof(k->msrs));
    *out = (struct vsw_kvm_bench){.iterations = iterations};
    for (int i = 0; i < N; i++)
        strncpy(out->names[i], name[i], sizeof(out->names[i]) - 1);
    int r = 0;
    for (int phase = 0; phase < 2; phase++)
        for (uint64_t it = 0; it < iterations && !r; it++)
            for (int i = 0; i < N; i++) {
                if (i < (int)NPARTS && parts[i].lapic && !k->lapic)
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

#else /* no KVM on this build host */

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
#endif
