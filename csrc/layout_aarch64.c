/*
 * layout_aarch64.c - the aarch64 register context as KVM's arm64 world switch
 * keeps it: user_pt_regs, the EL1/EL0 system registers, user_fpsimd_state.
 */
#include "vsw_internal.h"

/* Each group at the start of a 64-byte-aligned span (see layout_x86_64.c). */
enum { G_CORE, G_SYSREGS, G_FPSIMD, NGROUPS };
enum {
    CORE = 0, CORE_SZ = 272, CORE_SPAN = 320,   /* struct user_pt_regs */
    SYS = CORE + CORE_SPAN, NSYS = 23, SYS_SZ = NSYS * 8, SYS_SPAN = 192,
    FP = SYS + SYS_SPAN, FP_SZ = 528, FP_SPAN = 576, /* struct user_fpsimd_state */
    SIZE = FP + FP_SPAN
};

static const struct vsw_group_info groups[NGROUPS] = {
    [G_CORE] = {"core", CORE, CORE_SPAN, VSW_GROUP_SCALAR, CORE_SZ},
    [G_SYSREGS] = {"sysregs", SYS, SYS_SPAN, VSW_GROUP_SCALAR, SYS_SZ},
    [G_FPSIMD] = {"fpsimd", FP, FP_SPAN, VSW_GROUP_VECTOR, FP_SZ},
};

#define F(name, g, off, size) {name, g, off, size}
#define X(i) F("x" #i, G_CORE, CORE + 8 * (i), 8)
#define V(i) F("v" #i, G_FPSIMD, FP + 16 * (i), 16)
#define S(n, i) F(n, G_SYSREGS, SYS + 8 * (i), 8)

static const struct vsw_field_info fields[] = {
    X(0), X(1), X(2), X(3), X(4), X(5), X(6), X(7), X(8), X(9), X(10), X(11), X(12), X(13), X(14), X(15),
    X(16), X(17), X(18), X(19), X(20), X(21), X(22), X(23), X(24), X(25), X(26), X(27), X(28), X(29), X(30),
    F("sp", G_CORE, CORE + 248, 8), F("pc", G_CORE, CORE + 256, 8), F("pstate", G_CORE, CORE + 264, 8),

    S("sctlr_el1", 0), S("actlr_el1", 1), S("cpacr_el1", 2), S("ttbr0_el1", 3), S("ttbr1_el1", 4),
    S("tcr_el1", 5), S("esr_el1", 6), S("afsr0_el1", 7), S("afsr1_el1", 8), S("far_el1", 9),
    S("mair_el1", 10), S("vbar_el1", 11), S("contextidr_el1", 12), S("amair_el1", 13),
    S("cntkctl_el1", 14), S("par_el1", 15), S("tpidr_el1", 16), S("sp_el1", 17), S("elr_el1", 18),
    S("spsr_el1", 19), S("mdscr_el1", 20), S("tpidr_el0", 21), S("tpidrro_el0", 22),

    V(0), V(1), V(2), V(3), V(4), V(5), V(6), V(7), V(8), V(9), V(10), V(11), V(12), V(13), V(14), V(15),
    V(16), V(17), V(18), V(19), V(20), V(21), V(22), V(23), V(24), V(25), V(26), V(27), V(28), V(29),
    V(30), V(31),
    F("fpsr", G_FPSIMD, FP + 512, 4), F("fpcr", G_FPSIMD, FP + 516, 4),
};

static void reset(uint8_t *r) { (void)r; }

/* On an arm64 build host, prove the uapi sizes at build time. */
#if defined(__aarch64__) && defined(__has_include)
#if __has_include(<asm/ptrace.h>)
#include <asm/ptrace.h>
#define UAPI_CHECKED 1
_Static_assert(sizeof(struct user_pt_regs) == CORE_SZ, "user_pt_regs");
_Static_assert(sizeof(struct user_fpsimd_state) == FP_SZ, "user_fpsimd_state");
_Static_assert(SIZE <= VSW_MAX_CONTEXT, "fits the buffers sized for any context");
#endif
#endif
#ifndef UAPI_CHECKED
#define UAPI_CHECKED 0
#endif

static const char *const gprs[] = {"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10",
                                   "x19", "x20", "x21", "x29", "x30", NULL};
static const char *const vectors[] = {"v0", "v1", "v2", "v3", "v8", "v9", "v16", "v31", NULL};
static const char *const sysregs[] = {"far_el1", "tpidr_el0", NULL};
static const struct vsw_workload_def workload = {
    .gprs = gprs, .pc = "pc", .flags = "pstate",
    .flag_zero = 1u << 30, .flag_sign = 1u << 31, .flag_carry = 1u << 29, .flag_fixed = 0,
    .vectors = vectors, .sysregs = sysregs,
};

const struct vsw_layout_def vsw_layout_def_aarch64 = {
    .name = "aarch64", .id = VSW_LAYOUT_AARCH64, .version = 1, .size = SIZE,
    .ngroups = NGROUPS, .nfields = sizeof(fields) / sizeof(fields[0]), .uapi_checked = UAPI_CHECKED,
    .groups = groups, .fields = fields, .reset = reset, .workload = &workload,
};
