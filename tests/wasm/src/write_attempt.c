/* Tries to create and write argv[1]; prints "write ok" (exit 0) or "write failed: <why>" (exit 1). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: write_attempt PATH\n"); return 2; }
    FILE *f = fopen(argv[1], "w");
    if (!f || fputs("written by wasm\n", f) < 0 || fclose(f) != 0) {
        printf("write failed: %s\n", strerror(errno));
        return 1;
    }
    printf("write ok\n");
    return 0;
}
