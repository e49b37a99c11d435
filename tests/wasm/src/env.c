/* Prints NAME=value for every variable named in argv ("NAME=<unset>" when absent). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *value = getenv(argv[i]);
        printf("%s=%s\n", argv[i], value ? value : "<unset>");
    }
    return 0;
}
