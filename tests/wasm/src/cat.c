/* Copies the file argv[1] to stdout and, when argv[2] is given, to that path too. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: cat IN [OUT]\n"); return 2; }
    FILE *in = fopen(argv[1], "rb");
    if (!in) { fprintf(stderr, "open %s: %s\n", argv[1], strerror(errno)); return 1; }
    FILE *out = NULL;
    if (argc > 2) {
        out = fopen(argv[2], "wb");
        if (!out) { fprintf(stderr, "create %s: %s\n", argv[2], strerror(errno)); return 1; }
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        fwrite(buf, 1, n, stdout);
        if (out) fwrite(buf, 1, n, out);
    }
    fclose(in);
    if (out && fclose(out) != 0) { fprintf(stderr, "close %s: %s\n", argv[2], strerror(errno)); return 1; }
    return 0;
}
