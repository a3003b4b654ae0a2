/* The wall clock in milliseconds since the epoch: the unit of every time
 * the store keeps (journal, timers, outbox, audit). */
#ifndef AC_CLOCK_H
#define AC_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
