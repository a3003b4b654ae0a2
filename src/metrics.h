/* Metrics in the Prometheus text format: counters, gauges and histograms,
 * each family with at most one label. Any thread may record; GET /metrics
 * renders them. */
#ifndef AC_METRICS_H
#define AC_METRICS_H

#include <stddef.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* Adds delta to a counter (or sets a gauge) of `family`, in the series whose
 * label has `value` (label NULL: the family has no label). A family is made
 * on first use; the built-in ones carry their HELP text. Label values past
 * the 64th of a family are counted under "other", so a sender cannot grow
 * the set without bound. */
void metrics_add(const char *family, const char *value, double delta);
void metrics_set(const char *family, const char *value, double v);
void metrics_observe(const char *family, double v);

/* A family made at run time (a plugin's): its type, help and label name. */
int metrics_declare(const char *family, enum metric_type type, const char *label,
		    const char *help);

/* The whole exposition, malloc'd. */
char *metrics_render(size_t *len);

#endif
