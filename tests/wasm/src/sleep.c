/* Sleeps for argv[1] milliseconds (default 1000), then says so: a short job that takes a known time.
 * In 10 ms naps: a host call cannot be interrupted, so between naps the runtime can stop the module
 * (cancel, timeout, node stop) within ~10 ms. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    long ms = argc > 1 ? atol(argv[1]) : 1000;
    long long until = now_ms() + ms;
    struct timespec nap = {0, 10 * 1000000L};
    while (now_ms() < until) nanosleep(&nap, NULL);
    printf("slept %ld ms\n", ms);
    return 0;
}
