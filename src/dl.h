/* Libraries opened when first wanted (libcurl.h, libpq.h say why), and
 * called through a table of function pointers. */
#ifndef AC_DL_H
#define AC_DL_H

#include <pthread.h>
#include <stddef.h>

/* One function: its name in the library, its field in the table. */
struct dl_sym {
	const char *name;
	size_t at;
};
#define DL_SYM(table, prefix, field)                                                               \
	{                                                                                          \
		prefix #field, offsetof(struct table, field)                                       \
	}

/* A library to open once per process. */
struct dl_lib {
	const char *file; /* for dlopen(): a soname */
	const struct dl_sym *syms;
	size_t nsyms;
	void *table;
	/* Runs once the table is set; 0, or -1 with why. May be NULL. */
	int (*then)(char *why, size_t len);
	pthread_mutex_t mu;
	int tried, ok;
	char why[256];
};
#define DL_LIB(file, syms, table, then)                                                            \
	{                                                                                          \
		file, syms, sizeof syms / sizeof syms[0], table, then, PTHREAD_MUTEX_INITIALIZER,  \
		    0, 0, ""                                                                       \
	}

/* Opens the library and sets its table at the first call; any thread may
 * call it. -1 with err when that failed, then or now: it is tried once.
 * The library stays loaded until the process ends. */
int dl_load(struct dl_lib *l, char *err, size_t errlen);

#endif
