/* A null pointer: the first 2 MiB are unmapped, so this faults. */
#include <vsw_guest.h>

int main(void)
{
    vsw_printf("about to fault\n");
    return *(volatile int *)0;
}
