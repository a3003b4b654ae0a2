/*
 * The engine's JSON context: values of the JSON parser (src/json.h) seen
 * through the engine's data interface (struct mustache_data_ops).
 *
 * Values: falsey are null, false, "" and []; everything else (0 and {}
 * included) is truthy. Interpolation: strings as they are, integers in
 * decimal, reals in the shortest form that reads back exactly, true/false as
 * "true"/"false"; null, arrays and objects as "". A list's items are reached
 * by index too: {{#items.0}} is "the list has a first item".
 */
#ifndef AC_MUSTACHE_CONTEXT_JSON_H
#define AC_MUSTACHE_CONTEXT_JSON_H

#include "json.h"
#include "mustache.h"

/* Internal to the plugin: keep these out of its dynamic symbol table. */
#pragma GCC visibility push(hidden)

/* The data interface over cj_value pointers; udata is unused. */
extern const struct mustache_data_ops context_json_ops;

#pragma GCC visibility pop

#endif /* AC_MUSTACHE_CONTEXT_JSON_H */
