/*
 * jansson adapter of the engine's data interface (struct mustache_data_ops).
 *
 * Values are json_t pointers. Falsey: null, false, "" and []; everything
 * else (0 and {} included) is truthy. Interpolation: strings as they are,
 * integers in decimal, reals in the shortest form that reads back exactly,
 * true/false as "true"/"false"; null, arrays and objects as "".
 */
#ifndef AC_MUSTACHE_CONTEXT_JSON_H
#define AC_MUSTACHE_CONTEXT_JSON_H

#include "mustache.h"

/* Internal to the plugin: keep these out of its dynamic symbol table. */
#pragma GCC visibility push(hidden)

extern const struct mustache_data_ops context_json_ops;

#pragma GCC visibility pop

#endif /* AC_MUSTACHE_CONTEXT_JSON_H */
