/*
 * guests.c - the guest programs the KVM backend runs, as x86-64 assembly
 * source assembled with the C core (no binary blobs).  Each is position
 * independent and runs in 64-bit mode in its own 2 MiB address space:
 *
 *   code at 0x10000, a 64 KiB buffer at 0x100000, the stack below 0x1ff000;
 *   on entry rdi = rounds, rsi = seed (non-zero);
 *   the progress register <- the round (once a round), then the result
 *   registers <- the 64-bit result (low, high), then done, for ever.
 * Device registers are MMIO (vsw_guest_abi.h): 32-bit words seen at virtual
 * VSW_BUILTIN_REGS, mapped to guest-physical memory no memslot backs, so each
 * write exits to the VMM.
 * They run at CPL 3: user code runs natively even under software
 * virtualisation (kvm-pvm emulates CPL 0 code and drops IOPL, so no port I/O).
 *
 * hash    fills the buffer from an xorshift generator and FNV-1a-hashes it
 *         byte by byte: general registers, flags, the stack (call/ret)
 * vecsum  the same buffer summed and mixed with SSE2 (paddq, pxor, pshufd)
 * prng    an xorshift walk through a table it keeps changing, writing its
 *         accumulator to the FS and GS segment bases (wrfsbase, wrgsbase)
 *         and reading them back: system state beyond the general registers
 */
#include "vsw_internal.h"
#include "vsw_guest_abi.h"

#define STR_(x) #x
#define STR(x) STR_(x)
/* a device register's address as the assembler reads it */
#define REG(name) STR(VSW_BUILTIN_REGS + VSW_REG_##name)

#define GUEST(name) ".globl vsw_guest_" #name "_start, vsw_guest_" #name "_end\n" \
                    "vsw_guest_" #name "_start:\n"
#define END(name) "vsw_guest_" #name "_end:\n"

/* The result in r14 to the result registers (low, high), then "done" for ever. */
#define REPORT                                                                  \
    "mov %r14d, %eax\n movl %eax, " REG(RESULT_LO) "\n"                        \
    "mov %r14, %rax\n shr $32, %rax\n movl %eax, " REG(RESULT_HI) "\n"        \
    "1: movl %eax, " REG(DONE) "\n jmp 1b\n"
#define PROGRESS "mov %r12d, %eax\n movl %eax, " REG(PROGRESS) "\n"
/* r13 = xorshift64(r13); clobbers rax */
#define XORSHIFT                                                                \
    "mov %r13, %rax\n shl $13, %rax\n xor %rax, %r13\n"                     \
    "mov %r13, %rax\n shr $7, %rax\n xor %rax, %r13\n"                      \
    "mov %r13, %rax\n shl $17, %rax\n xor %rax, %r13\n"
/* buffer <- 8192 xorshift words; clobbers rax, rbx, rcx */
#define FILL "mov $0x100000, %rbx\n mov $8192, %rcx\n 2: call 9f\n mov %r13, (%rbx)\n" \
             "add $8, %rbx\n dec %rcx\n jnz 2b\n"

__asm__(
    ".pushsection .rodata.vsw_guests, \"a\"\n"
    ".code64\n"
    ".balign 16\n"
    GUEST(hash)
    "mov %rdi, %r12\n mov %rsi, %r13\n"
    "movabs $0xcbf29ce484222325, %r14\n movabs $0x100000001b3, %r15\n"
    "3: " FILL
    "mov $0x100000, %rbx\n mov $65536, %rcx\n"
    "4: movzbq (%rbx), %rax\n xor %rax, %r14\n imul %r15, %r14\n inc %rbx\n dec %rcx\n jnz 4b\n"
    PROGRESS
    "dec %r12\n jnz 3b\n"
    REPORT
    "9: push %rcx\n" XORSHIFT "pop %rcx\n ret\n"
    END(hash)

    ".balign 16\n"
    GUEST(vecsum)
    "mov %rdi, %r12\n mov %rsi, %r13\n"
    "pxor %xmm0, %xmm0\n pxor %xmm1, %xmm1\n pxor %xmm2, %xmm2\n"
    "3: " FILL
    "mov $0x100000, %rbx\n mov $4096, %rcx\n"
    "4: movdqa (%rbx), %xmm4\n paddq %xmm4, %xmm0\n pxor %xmm0, %xmm1\n pshufd $0x4e, %xmm1, %xmm1\n"
    "paddq %xmm1, %xmm2\n add $16, %rbx\n dec %rcx\n jnz 4b\n"
    PROGRESS
    "dec %r12\n jnz 3b\n"
    "movq %xmm0, %r14\n movq %xmm1, %rax\n xor %rax, %r14\n movq %xmm2, %rax\n add %rax, %r14\n"
    "pshufd $0x4e, %xmm2, %xmm3\n movq %xmm3, %rax\n rol $29, %rax\n xor %rax, %r14\n"
    REPORT
    "9: push %rcx\n" XORSHIFT "pop %rcx\n ret\n"
    END(vecsum)

    ".balign 16\n"
    GUEST(prng)
    "mov %rdi, %r12\n mov %rsi, %r13\n xor %r14d, %r14d\n"
    "3: " FILL
    "mov $65536, %r15\n"
    "4: call 9f\n mov %r13, %rax\n and $8191, %rax\n lea 0x100000(,%rax,8), %rbx\n"
    "add (%rbx), %r14\n xor %r13, (%rbx)\n rol $7, %r14\n"
    "test $255, %r15\n jnz 5f\n"
    "movabs $0x00007ffffffffff8, %rax\n and %r14, %rax\n wrfsbase %rax\n rol $17, %rax\n"
    "movabs $0x00007ffffffffff8, %rdx\n and %rdx, %rax\n wrgsbase %rax\n"
    "rdfsbase %rax\n rdgsbase %rdx\n xor %rax, %r14\n add %rdx, %r14\n"
    "5: dec %r15\n jnz 4b\n"
    PROGRESS
    "dec %r12\n jnz 3b\n"
    REPORT
    "9: " XORSHIFT "ret\n"
    END(prng)
    ".popsection\n");

extern const uint8_t vsw_guest_hash_start[], vsw_guest_hash_end[];
extern const uint8_t vsw_guest_vecsum_start[], vsw_guest_vecsum_end[];
extern const uint8_t vsw_guest_prng_start[], vsw_guest_prng_end[];

int vsw_guest_program(uint32_t index, struct vsw_guest_program *out)
{
    const struct {
        const char *name;
        const uint8_t *start, *end;
    } all[] = {
        {"hash", vsw_guest_hash_start, vsw_guest_hash_end},
        {"vecsum", vsw_guest_vecsum_start, vsw_guest_vecsum_end},
        {"prng", vsw_guest_prng_start, vsw_guest_prng_end},
    };
    if (index >= sizeof(all) / sizeof(all[0]))
        return -ENOENT;
    if (!out)
        return -EINVAL;
    *out = (struct vsw_guest_program){all[index].name, all[index].start, (uint32_t)(all[index].end - all[index].start)};
    return 0;
}
