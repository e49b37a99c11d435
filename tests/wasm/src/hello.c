/* Prints a greeting and echoes its arguments, one per line. */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("hello from wasm\n");
    for (int i = 1; i < argc; i++) printf("arg%d=%s\n", i, argv[i]);
    return 0;
}
