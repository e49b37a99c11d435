/* Spins forever; only an epoch interrupt (timeout, cancel) ends it. */
#include <stdio.h>

int main(void) {
    printf("looping\n");
    fflush(stdout);
    volatile unsigned long counter = 0;
    for (;;) counter++;
}
