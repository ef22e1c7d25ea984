/*
 * layout_x86_64.c - the x86_64 register context, byte-compatible with KVM's
 * userspace ABI: kvm_regs, kvm_sregs, the standard-format XSAVE area split at
 * component granularity, kvm_xcrs, kvm_debugregs, kvm_vcpu_events, the MSRs a
 * guest can change (as kvm_msr_entry records) and the local APIC (kvm_lapic_state).
 *
 * Version 2 (version 1 had 11 MSRs and no LAPIC): every MSR KVM lists that a
 * guest can write belongs to one machine.  Deliberately shared, so not here:
 * the TSC (0x10; one time base for every machine, as on one core) and what
 * the host provides and no guest can change (ARCH_CAPABILITIES,
 * PERF_CAPABILITIES, PLATFORM_INFO, UCODE_REV, SMI_COUNT, the MTRRs KVM emulates).
 */
#include "vsw_internal.h"
#include <stddef.h>
#include <string.h>

/* Group bases in the register file.  Each group is one KVM struct (or XSAVE
 * component) at the start of a 64-byte-aligned span, so the mover's blocks and
 * the integrity check never straddle a group; the XSAVE area is contiguous and
 * keeps the standard format's offsets. */
enum {
    G_REGS, G_SREGS, G_FPU_SSE, G_XHDR, G_AVX, G_XGAP, G_MPX, G_OPMASK, G_ZMM_HI256, G_HI16_ZMM, G_PKRU,
    G_XCRS, G_DEBUGREGS, G_EVENTS, G_MSRS, G_LAPIC, NGROUPS
};
enum {
    REGS = 0, REGS_SZ = 144, REGS_SPAN = 192,
    SREGS = REGS + REGS_SPAN, SREGS_SZ = 312, SREGS_SPAN = 320,
    XSAVE = SREGS + SREGS_SPAN,         /* standard-format XSAVE offsets from here */
    XSAVE_SZ = 2696,                    /* through PKRU (offset 2688, 8 bytes) */
    XSAVE_SPAN = 2752,
    XCRS = XSAVE + XSAVE_SPAN, XCRS_SZ = 392, XCRS_SPAN = 448,
    DEBUGREGS = XCRS + XCRS_SPAN, DEBUGREGS_SZ = 128,
    EVENTS = DEBUGREGS + DEBUGREGS_SZ, EVENTS_SZ = 64,
    MSRS = EVENTS + EVENTS_SZ, NMSRS = 48, MSR_REC = sizeof(struct vsw_msr_record),
    MSRS_SZ = NMSRS * MSR_REC, MSRS_SPAN = 768,
    LAPIC = MSRS + MSRS_SPAN, LAPIC_SZ = 1024,
    SIZE = LAPIC + LAPIC_SZ
};
_Static_assert(SIZE == 5696, "the x86_64 context");
_Static_assert(SIZE <= VSW_MAX_CONTEXT, "fits the buffers sized for any context");

static const struct vsw_group_info groups[NGROUPS] = {
    [G_REGS] = {"regs", REGS, REGS_SPAN, VSW_GROUP_SCALAR, REGS_SZ},
    [G_SREGS] = {"sregs", SREGS, SREGS_SPAN, VSW_GROUP_SCALAR, SREGS_SZ},
    [G_FPU_SSE] = {"fpu_sse", XSAVE + 0, 512, VSW_GROUP_VECTOR, 512},
    [G_XHDR] = {"xsave_header", XSAVE + 512, 64, VSW_GROUP_VECTOR, 64},
    [G_AVX] = {"avx", XSAVE + 576, 256, VSW_GROUP_VECTOR, 256},
    /* bytes 832..959 of the standard format belong to no component */
    [G_XGAP] = {"xsave_reserved", XSAVE + 832, 128, VSW_GROUP_VECTOR, 0},
    [G_MPX] = {"mpx", XSAVE + 960, 128, VSW_GROUP_VECTOR, 128},
    [G_OPMASK] = {"opmask", XSAVE + 1088, 64, VSW_GROUP_VECTOR, 64},
    [G_ZMM_HI256] = {"zmm_hi256", XSAVE + 1152, 512, VSW_GROUP_VECTOR, 512},
    [G_HI16_ZMM] = {"hi16_zmm", XSAVE + 1664, 1024, VSW_GROUP_VECTOR, 1024},
    [G_PKRU] = {"pkru", XSAVE + 2688, 64, VSW_GROUP_VECTOR, 8},
    [G_XCRS] = {"xcrs", XCRS, XCRS_SPAN, VSW_GROUP_SCALAR, XCRS_SZ},
    [G_DEBUGREGS] = {"debugregs", DEBUGREGS, DEBUGREGS_SZ, VSW_GROUP_SCALAR, DEBUGREGS_SZ},
    [G_EVENTS] = {"events", EVENTS, EVENTS_SZ, VSW_GROUP_SCALAR, EVENTS_SZ},
    [G_MSRS] = {"msrs", MSRS, MSRS_SPAN, VSW_GROUP_SCALAR, MSRS_SZ},
    [G_LAPIC] = {"lapic", LAPIC, LAPIC_SZ, VSW_GROUP_SCALAR, LAPIC_SZ},
};

#define F(name, g, off, size) {name, g, off, size}
#define SEG(n, base)                                                                            \
    F(n ".base", G_SREGS, base, 8), F(n ".limit", G_SREGS, base + 8, 4),                        \
        F(n ".selector", G_SREGS, base + 12, 2), F(n ".type", G_SREGS, base + 14, 1),           \
        F(n ".present", G_SREGS, base + 15, 1), F(n ".dpl", G_SREGS, base + 16, 1),             \
        F(n ".db", G_SREGS, base + 17, 1), F(n ".s", G_SREGS, base + 18, 1),                    \
        F(n ".l", G_SREGS, base + 19, 1), F(n ".g", G_SREGS, base + 20, 1),                     \
        F(n ".avl", G_SREGS, base + 21, 1), F(n ".unusable", G_SREGS, base + 22, 1)
#define DT(n, base) F(n ".base", G_SREGS, base, 8), F(n ".limit", G_SREGS, base + 8, 2)
#define R8(n, i, g, base) F(n #i, g, (base) + 8 * (i), 8)
#define R16(n, i, g, base) F(n #i, g, (base) + 16 * (i), 16)
#define R32(n, i, g, base) F(n #i, g, (base) + 32 * (i), 32)
#define LIST8(M, n, g, base) M(n, 0, g, base), M(n, 1, g, base), M(n, 2, g, base), M(n, 3, g, base), \
    M(n, 4, g, base), M(n, 5, g, base), M(n, 6, g, base), M(n, 7, g, base)
#define LIST16(M, n, g, base) LIST8(M, n, g, base), M(n, 8, g, base), M(n, 9, g, base),             \
    M(n, 10, g, base), M(n, 11, g, base), M(n, 12, g, base), M(n, 13, g, base), M(n, 14, g, base),   \
    M(n, 15, g, base)
/* zmm16..zmm31: 64 bytes each, numbered from 16 */
#define Z(i) F("zmm" #i, G_HI16_ZMM, XSAVE + 1664 + 64 * ((i) - 16), 64)
#define MSR(n, i) F("msr." n, G_MSRS, MSRS + MSR_REC * (i) + offsetof(struct vsw_msr_record, data), 8)

/* The MSRs a guest can write, Intel's and AMD's, KVM's paravirtual ones among
 * them; which of them a host has, KVM_GET_MSR_INDEX_LIST says at run time. */
#define MSR_LIST(X)                                                                                          \
    X(sysenter_cs, 0x174) X(sysenter_esp, 0x175) X(sysenter_eip, 0x176) X(pat, 0x277)                        \
    X(star, 0xc0000081) X(lstar, 0xc0000082) X(cstar, 0xc0000083) X(fmask, 0xc0000084)                      \
    X(kernel_gs_base, 0xc0000102) X(tsc_aux, 0xc0000103) X(spec_ctrl, 0x48) X(tsc_adjust, 0x3b)              \
    X(misc_enable, 0x1a0) X(debugctl, 0x1d9) X(lastbranch_from_ip, 0x1db) X(lastbranch_to_ip, 0x1dc)         \
    X(lastint_from_ip, 0x1dd) X(lastint_to_ip, 0x1de) X(mcg_status, 0x17a) X(mcg_ctl, 0x17b)                 \
    X(misc_features_enables, 0x140) X(tsc_deadline, 0x6e0) X(power_ctl, 0x1fc) X(vm_hsave_pa, 0xc0010117)    \
    X(virt_spec_ctrl, 0xc001011f) X(hwcr, 0xc0010015) X(kvm_wall_clock, 0x4b564d00)                         \
    X(kvm_system_time, 0x4b564d01) X(kvm_async_pf_en, 0x4b564d02) X(kvm_steal_time, 0x4b564d03)              \
    X(kvm_pv_eoi_en, 0x4b564d04) X(kvm_poll_control, 0x4b564d05) X(kvm_async_pf_int, 0x4b564d06)             \
    X(kvm_async_pf_ack, 0x4b564d07) X(kvm_wall_clock_old, 0x11) X(kvm_system_time_old, 0x12) X(xss, 0xda0)   \
    X(umwait_control, 0xe1) X(u_cet, 0x6a0) X(s_cet, 0x6a2) X(pl0_ssp, 0x6a4) X(pl1_ssp, 0x6a5)             \
    X(pl2_ssp, 0x6a6) X(pl3_ssp, 0x6a7) X(int_ssp_table, 0x6a8) X(xfd, 0x1c4) X(xfd_err, 0x1c5)              \
    X(feature_control, 0x3a)
#define MSR_INDEX(name, index) index,
static const uint32_t msr_index[NMSRS] = {MSR_LIST(MSR_INDEX)};
_Static_assert(sizeof(msr_index) / sizeof(msr_index[0]) == NMSRS, "one record per listed MSR");
enum {
#define MSR_SLOT(name, index) MSR_SLOT_##name,
    MSR_LIST(MSR_SLOT)
};

static const struct vsw_field_info fields[] = {
    F("rax", G_REGS, 0, 8), F("rbx", G_REGS, 8, 8), F("rcx", G_REGS, 16, 8), F("rdx", G_REGS, 24, 8),
    F("rsi", G_REGS, 32, 8), F("rdi", G_REGS, 40, 8), F("rsp", G_REGS, 48, 8), F("rbp", G_REGS, 56, 8),
    F("r8", G_REGS, 64, 8), F("r9", G_REGS, 72, 8), F("r10", G_REGS, 80, 8), F("r11", G_REGS, 88, 8),
    F("r12", G_REGS, 96, 8), F("r13", G_REGS, 104, 8), F("r14", G_REGS, 112, 8), F("r15", G_REGS, 120, 8),
    F("rip", G_REGS, 128, 8), F("rflags", G_REGS, 136, 8),

    SEG("cs", SREGS + 0), SEG("ds", SREGS + 24), SEG("es", SREGS + 48), SEG("fs", SREGS + 72),
    SEG("gs", SREGS + 96), SEG("ss", SREGS + 120), SEG("tr", SREGS + 144), SEG("ldt", SREGS + 168),
    DT("gdt", SREGS + 192), DT("idt", SREGS + 208),
    F("cr0", G_SREGS, SREGS + 224, 8), F("cr2", G_SREGS, SREGS + 232, 8), F("cr3", G_SREGS, SREGS + 240, 8),
    F("cr4", G_SREGS, SREGS + 248, 8), F("cr8", G_SREGS, SREGS + 256, 8), F("efer", G_SREGS, SREGS + 264, 8),
    F("apic_base", G_SREGS, SREGS + 272, 8),
    R8("interrupt_bitmap", 0, G_SREGS, SREGS + 280), R8("interrupt_bitmap", 1, G_SREGS, SREGS + 280),
    R8("interrupt_bitmap", 2, G_SREGS, SREGS + 280), R8("interrupt_bitmap", 3, G_SREGS, SREGS + 280),

    F("fcw", G_FPU_SSE, XSAVE + 0, 2), F("fsw", G_FPU_SSE, XSAVE + 2, 2), F("ftw", G_FPU_SSE, XSAVE + 4, 1),
    F("fop", G_FPU_SSE, XSAVE + 6, 2), F("fip", G_FPU_SSE, XSAVE + 8, 8), F("fdp", G_FPU_SSE, XSAVE + 16, 8),
    F("mxcsr", G_FPU_SSE, XSAVE + 24, 4), F("mxcsr_mask", G_FPU_SSE, XSAVE + 28, 4),
    LIST8(R16, "st", G_FPU_SSE, XSAVE + 32),
    LIST16(R16, "xmm", G_FPU_SSE, XSAVE + 160),
    F("xstate_bv", G_XHDR, XSAVE + 512, 8), F("xcomp_bv", G_XHDR, XSAVE + 520, 8),
    LIST16(R16, "ymmh", G_AVX, XSAVE + 576),
    R16("bnd", 0, G_MPX, XSAVE + 960), R16("bnd", 1, G_MPX, XSAVE + 960), R16("bnd", 2, G_MPX, XSAVE + 960),
    R16("bnd", 3, G_MPX, XSAVE + 960),
    F("bndcfgu", G_MPX, XSAVE + 1024, 8), F("bndstatus", G_MPX, XSAVE + 1032, 8),
    LIST8(R8, "k", G_OPMASK, XSAVE + 1088),
    LIST16(R32, "zmmh", G_ZMM_HI256, XSAVE + 1152),
    Z(16), Z(17), Z(18), Z(19), Z(20), Z(21), Z(22), Z(23), Z(24), Z(25), Z(26), Z(27), Z(28), Z(29),
    Z(30), Z(31),
    F("pkru", G_PKRU, XSAVE + 2688, 4),

    F("nr_xcrs", G_XCRS, XCRS + 0, 4), F("xcrs.flags", G_XCRS, XCRS + 4, 4), F("xcr0", G_XCRS, XCRS + 16, 8),

    F("dr0", G_DEBUGREGS, DEBUGREGS + 0, 8), F("dr1", G_DEBUGREGS, DEBUGREGS + 8, 8),
    F("dr2", G_DEBUGREGS, DEBUGREGS + 16, 8), F("dr3", G_DEBUGREGS, DEBUGREGS + 24, 8),
    F("dr6", G_DEBUGREGS, DEBUGREGS + 32, 8), F("dr7", G_DEBUGREGS, DEBUGREGS + 40, 8),
    F("debugregs.flags", G_DEBUGREGS, DEBUGREGS + 48, 8),

    F("exception.injected", G_EVENTS, EVENTS + 0, 1), F("exception.nr", G_EVENTS, EVENTS + 1, 1),
    F("exception.has_error_code", G_EVENTS, EVENTS + 2, 1), F("exception.pending", G_EVENTS, EVENTS + 3, 1),
    F("exception.error_code", G_EVENTS, EVENTS + 4, 4),
    F("interrupt.injected", G_EVENTS, EVENTS + 8, 1), F("interrupt.nr", G_EVENTS, EVENTS + 9, 1),
    F("interrupt.soft", G_EVENTS, EVENTS + 10, 1), F("interrupt.shadow", G_EVENTS, EVENTS + 11, 1),
    F("nmi.injected", G_EVENTS, EVENTS + 12, 1), F("nmi.pending", G_EVENTS, EVENTS + 13, 1),
    F("nmi.masked", G_EVENTS, EVENTS + 14, 1), F("sipi_vector", G_EVENTS, EVENTS + 16, 4),
    F("events.flags", G_EVENTS, EVENTS + 20, 4), F("smi.smm", G_EVENTS, EVENTS + 24, 1),
    F("smi.pending", G_EVENTS, EVENTS + 25, 1), F("smi.smm_inside_nmi", G_EVENTS, EVENTS + 26, 1),
    F("smi.latched_init", G_EVENTS, EVENTS + 27, 1), F("triple_fault.pending", G_EVENTS, EVENTS + 28, 1),
    F("exception_has_payload", G_EVENTS, EVENTS + 55, 1), F("exception_payload", G_EVENTS, EVENTS + 56, 8),

#define MSR_FIELD(name, index) MSR(#name, MSR_SLOT_##name),
    MSR_LIST(MSR_FIELD)
    F("lapic.id", G_LAPIC, LAPIC + 0x20, 4), F("lapic.version", G_LAPIC, LAPIC + 0x30, 4),
    F("lapic.tpr", G_LAPIC, LAPIC + 0x80, 4), F("lapic.ldr", G_LAPIC, LAPIC + 0xd0, 4),
    F("lapic.svr", G_LAPIC, LAPIC + 0xf0, 4), F("lapic.lvt_timer", G_LAPIC, LAPIC + 0x320, 4),
    F("lapic.timer_initial", G_LAPIC, LAPIC + 0x380, 4), F("lapic.timer_divide", G_LAPIC, LAPIC + 0x3e0, 4),
};

/* Structural constants: the MSR index of each kvm_msr_entry, one XCR (XCR0). */
static void reset(uint8_t *r)
{
    uint32_t one = 1;
    for (int i = 0; i < NMSRS; i++)
        memcpy(r + MSRS + MSR_REC * i + offsetof(struct vsw_msr_record, index), &msr_index[i], 4);
    memcpy(r + XCRS, &one, 4);
}

/* Where the kernel's uapi headers are installed, prove byte compatibility at build time. */
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<linux/kvm.h>)
#include <linux/kvm.h>
#include <stddef.h>
#define UAPI_CHECKED 1
#define AT(type, member, off) _Static_assert(offsetof(struct type, member) == (off), #type "." #member)
_Static_assert(sizeof(struct kvm_regs) == REGS_SZ, "kvm_regs");
_Static_assert(sizeof(struct kvm_sregs) == SREGS_SZ, "kvm_sregs");
_Static_assert(sizeof(struct kvm_xcrs) == XCRS_SZ, "kvm_xcrs");
_Static_assert(sizeof(struct kvm_debugregs) == DEBUGREGS_SZ, "kvm_debugregs");
_Static_assert(sizeof(struct kvm_vcpu_events) == EVENTS_SZ, "kvm_vcpu_events");
_Static_assert(sizeof(struct kvm_msr_entry) == sizeof(struct vsw_msr_record), "kvm_msr_entry");
_Static_assert(sizeof(struct kvm_lapic_state) == LAPIC_SZ, "kvm_lapic_state");
_Static_assert(sizeof(struct kvm_segment) == 24, "kvm_segment");
AT(kvm_regs, rip, 128); AT(kvm_regs, rflags, 136); AT(kvm_regs, r8, 64);
AT(kvm_sregs, ds, 24); AT(kvm_sregs, ldt, 168); AT(kvm_sregs, gdt, 192); AT(kvm_sregs, idt, 208);
AT(kvm_sregs, cr0, 224); AT(kvm_sregs, efer, 264); AT(kvm_sregs, apic_base, 272);
AT(kvm_sregs, interrupt_bitmap, 280);
AT(kvm_segment, selector, 12); AT(kvm_segment, type, 14); AT(kvm_segment, unusable, 22);
AT(kvm_dtable, limit, 8);
AT(kvm_xcrs, xcrs, 8); AT(kvm_xcr, value, 8);
AT(kvm_debugregs, dr6, 32); AT(kvm_debugregs, dr7, 40); AT(kvm_debugregs, flags, 48);
AT(kvm_vcpu_events, nmi, 12); AT(kvm_vcpu_events, sipi_vector, 16); AT(kvm_vcpu_events, flags, 20);
AT(kvm_vcpu_events, smi, 24); AT(kvm_vcpu_events, exception_has_payload, 55);
AT(kvm_vcpu_events, exception_payload, 56);
AT(kvm_msr_entry, index, offsetof(struct vsw_msr_record, index));
AT(kvm_msr_entry, data, offsetof(struct vsw_msr_record, data));
_Static_assert(sizeof(((struct kvm_xsave *)0)->region) >= XSAVE_SZ, "kvm_xsave");
#endif
#endif
#ifndef UAPI_CHECKED
#define UAPI_CHECKED 0
#endif

static const char *const gprs[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10",
                                   "r11", "r12", "r13", "r14", "r15", NULL};
static const char *const vectors[] = {"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
                                      "ymmh0", "ymmh3", "ymmh6", "ymmh9", NULL};
static const char *const sysregs[] = {"cr2", "msr.kernel_gs_base", NULL};
static const struct vsw_workload_def workload = {
    .gprs = gprs, .pc = "rip", .flags = "rflags",
    .flag_zero = 1u << 6, .flag_sign = 1u << 7, .flag_carry = 1u << 0, .flag_fixed = 1u << 1,
    .vectors = vectors, .sysregs = sysregs,
};

const struct vsw_layout_def vsw_layout_def_x86_64 = {
    .name = "x86_64", .id = VSW_LAYOUT_X86_64, .version = 2, .size = SIZE,
    .ngroups = NGROUPS, .nfields = sizeof(fields) / sizeof(fields[0]), .uapi_checked = UAPI_CHECKED,
    .groups = groups, .fields = fields, .reset = reset, .workload = &workload,
};
