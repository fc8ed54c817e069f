/* The usage counters, one line each, in the order they are shown:
 * X(field of struct usage, name in usage --json and /metrics (pyexec_NAME_total),
 *   usage table header, /metrics help, kept in ms and shown as seconds).
 * Adding a counter: a field at the end of struct usage (state.h) and a line here. */
#ifndef PYEXEC_USAGE_COUNTERS_H
#define PYEXEC_USAGE_COUNTERS_H

#define USAGE_COUNTERS(X) \
    X(requests, "requests", "REQUESTS", "Executions admitted.", 0) \
    X(successes, "successes", "SUCCESSES", "Executions that returned a result.", 0) \
    X(user_errors, "user_errors", "USER_ERR", "Executions that raised or returned an unusable result.", 0) \
    X(timeouts, "timeouts", "TIMEOUTS", "Executions stopped by a time limit.", 0) \
    X(memory_errors, "memory_errors", "MEM_ERR", "Executions stopped by the memory limit.", 0) \
    X(output_limits, "output_limits", "OUTPUT_LIM", "Executions stopped by the output limit.", 0) \
    X(internal_errors, "internal_errors", "INTERNAL_ERR", "Executions that failed through a fault of the service.", 0) \
    X(refused, "refused", "REFUSED", "Admitted requests refused (4xx) before execution: bad body, content type or fields.", 0) \
    X(client_gone, "client_gone", "GONE", "Admitted requests whose client left before the answer was written.", 0) \
    X(rate_limited, "rate_limited", "RATE_LIM", "Requests refused by the rate limit.", 0) \
    X(concurrency_limited, "concurrency_limited", "CONC_LIM", "Requests refused by the concurrency limit.", 0) \
    X(cpu_ms, "cpu_seconds", "CPU_S", "CPU time of executions.", 1) \
    X(wall_ms, "wall_seconds", "WALL_S", "Wall time of executions.", 1)

#endif
