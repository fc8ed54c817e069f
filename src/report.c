#include "report.h"

#include <time.h>

void report_stage(struct report *r, enum report_stage s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r->stage_us[s] = ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}
