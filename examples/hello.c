/* The README demo: `bacalhau wasm run hello.wasm -- world` prints a greeting and its arguments.
 * Build: python tests/wasm/build.py OUT_DIR   (or: clang --target=wasm32-wasi -O2 -s hello.c -o hello.wasm) */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    printf("Hello from bacalhau-py WASM!\n");
    for (int i = 1; i < argc; i++) printf("arg[%d]: %s\n", i, argv[i]);
    const char *name = getenv("NAME");
    if (name) printf("NAME=%s\n", name);
    return 0;
}
