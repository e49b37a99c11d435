/* Allocates and touches argv[1] MiB, then prints "allocated". */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1;
    size_t size = mib * 1024 * 1024;
    /* volatile, or clang elides an allocation that is only written (-O2 drops malloc+memset). */
    volatile char *block = malloc(size);
    if (!block) { fprintf(stderr, "malloc of %zu MiB failed\n", mib); return 1; }
    for (size_t i = 0; i < size; i += 4096) block[i] = 1;
    printf("allocated %zu MiB\n", mib);
    return 0;
}
