/* Calls `add` imported from the module at "lib.wasm" in the task filesystem. */
#include <stdio.h>

__attribute__((import_module("lib.wasm"), import_name("add"))) int add(int a, int b);

int main(void) {
    printf("2+3=%d\n", add(2, 3));
    return 0;
}
