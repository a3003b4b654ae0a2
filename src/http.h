/* The HTTP front: routes, limits, verification, hand-off to the dispatcher. */
#ifndef AC_HTTP_H
#define AC_HTTP_H

#include "config.h"
#include "dispatch.h"

struct http;

struct http *http_start(const struct config *cfg, struct dispatcher *d, char *err, size_t errlen);
/* A reloaded config for the requests that start from now on. The old one
 * must stay alive: requests in progress still read it. */
void http_set_config(struct http *h, const struct config *cfg);
/* The port actually bound (useful with listen: HOST:0). */
unsigned http_port(struct http *h);
/* Stops accepting new connections; open ones finish. */
void http_quiesce(struct http *h);
void http_stop(struct http *h);

#endif
