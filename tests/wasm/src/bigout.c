/* Writes argv[1] MiB to stdout as 64-byte numbered lines ("%015d" + 48 '.' + '\n'), then exits 0.
   For tests and benches of streaming big logs: the size is exact and each line is checkable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_BYTES 64
#define LINES_PER_BLOCK 1024

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 1;
    long lines = mib * 1024 * 1024 / LINE_BYTES;
    static char block[LINE_BYTES * LINES_PER_BLOCK];
    for (long first = 0; first < lines; first += LINES_PER_BLOCK) {
        long count = lines - first < LINES_PER_BLOCK ? lines - first : LINES_PER_BLOCK;
        for (long i = 0; i < count; i++) {
            char *line = block + i * LINE_BYTES;
            snprintf(line, 16, "%015ld", first + i);
            memset(line + 15, '.', LINE_BYTES - 16);
            line[LINE_BYTES - 1] = '\n';
        }
        if (fwrite(block, LINE_BYTES, (size_t)count, stdout) != (size_t)count) return 1;
    }
    return 0;
}
