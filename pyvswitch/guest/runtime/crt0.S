/* crt0.S - a guest's entry: rdi = the size of its address space.  Aligns the
 * stack, sets the heap up, calls main(0, 0) and exits with its status. */
    .section .text.start, "ax"
    .globl _start
_start:
    and $-16, %rsp
    call vsw_runtime_init
    xor %edi, %edi
    xor %esi, %esi
    call main
    mov %eax, %edi
    call vsw_exit
1:  jmp 1b
    .section .note.GNU-stack, "", @progbits
