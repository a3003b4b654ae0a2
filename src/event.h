/*
 * What the HTTP layer reads from a verified body before it is journaled:
 * the event's type and the id it is deduplicated on.
 */
#ifndef AC_EVENT_H
#define AC_EVENT_H

#include <stddef.h>

#include "dispatch.h"

/* Parses body strictly (an object or array at the root, no key twice in
 * one object, no \u0000, well-formed UTF-8) and fills job->type (the
 * route's event_type when set, else the body's `event`, `type` or
 * `event_type`) and job->dedupe (the body's `id`, or "sha256:" and the hex
 * SHA-256 of the raw body). 0, or 400 with the reason in err. */
unsigned event_classify(struct job *job, const char *route_type, const char *body, size_t len,
			char *err, size_t errlen);

#endif
