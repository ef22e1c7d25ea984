/*
 * vsw_guest_abi.h - the guest <-> VMM ABI, defined once.
 *
 * Read by the guest runtime (vsw_guest.h), by the C core (kvm_run.c decodes MMIO
 * exits with it, guests.c's built-in programs write these registers) and by
 * Python (the cffi build script turns every #define below into a constant of
 * pyvswitch._vsw.lib).  Plain integers only: a guest's freestanding build
 * includes it too.
 */
#ifndef VSW_GUEST_ABI_H
#define VSW_GUEST_ABI_H

#define VSW_GUEST_ABI 1
/* guest-physical base of the device registers; no memslot backs it, so every
 * access exits to the VMM (ELF guests also see it at this virtual address) */
#define VSW_MMIO 0xc0000000
/* where the built-in assembly programs see the same page: virtual 2 MiB */
#define VSW_BUILTIN_REGS 0x200000
/* device registers: byte offsets from the base */
#define VSW_REG_RESULT_LO 0x40      /* 4-byte write: a result's low half ...        */
#define VSW_REG_RESULT_HI 0x44      /* 4-byte write: ... and its high half           */
#define VSW_REG_PROGRESS 0x48       /* 4-byte write: progress, once a round          */
#define VSW_REG_DONE 0x4c           /* 4-byte write: finished; a built-in program's result
                                       is in RESULT_LO/HI, a C guest's exit status is the
                                       value written (as EXIT)                        */
#define VSW_REG_CONSOLE_ADDR 0x80   /* 8-byte write: a buffer's address ...          */
#define VSW_REG_CONSOLE_LEN 0x88    /* 4-byte write: ... and its length: printed     */
#define VSW_REG_EXIT 0x90           /* 4-byte write: exit status; never returns      */
#define VSW_REG_CLOCK 0x98          /* 8-byte read: this guest's virtual ns          */
#define VSW_REG_FAULT 0xa0          /* 4-byte write: the vector of a CPU exception, written
                                       by the VMM's own handlers at CPL 0 (ELF guests; the
                                       frame is in the guest's system area, not user's) */
#define VSW_REG_SYSCALL 0xa8        /* 4-byte write: a Linux guest's system call, from
                                       its entry stub at CPL 0 (pyvswitch.kvm.linux) */

#endif
