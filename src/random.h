/* Random bits for ids that must not repeat across processes and hosts (a
 * request id's prefix, a connection's token): from getrandom(), or, where
 * that fails, from the clock and the process id. Not for secrets. */
#ifndef AC_RANDOM_H
#define AC_RANDOM_H

#include <stdint.h>
#include <sys/random.h>
#include <sys/types.h>
#include <unistd.h>

#include "clock.h"

static inline uint64_t random_bits(void)
{
	uint64_t r;
	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
	return r;
}

#endif
