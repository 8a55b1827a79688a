/*
 * The monotonic clock, in milliseconds: the same on every thread and in
 * every process of the machine, so a time taken by a worker's event loop
 * compares with one taken by a pool thread or by another worker.
 */

#ifndef CRM_CLOCK_H
#define CRM_CLOCK_H

#include <stdint.h>
#include <time.h>


static inline int64_t
crm_clock_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif /* CRM_CLOCK_H */
