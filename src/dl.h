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
#define DL_SYM(table, prefix, field) {prefix #field, offsetof(struct table, field)}

/* A library to open once per process. */
struct dl_lib {
	const char *file; /* for dlopen(): a soname */
	const struct dl_sym *syms;
	size_t nsyms;
	void *table;
	size_t size; /* of the table */
	/* Runs once the table is set; 0, or -1 with why. May be NULL. */
	int (*then)(char *why, size_t len);
	pthread_mutex_t mu;
	void *handle; /* once the table is set */
	int ok;	      /* once `then` succeeded too */
};
#define DL_LIB(file, syms, table, then)                                       \
	{file, syms, sizeof syms / sizeof syms[0], table, sizeof *(table), then, \
	 PTHREAD_MUTEX_INITIALIZER, NULL, 0}

/* Opens the library and sets its table, or finds that done; any thread may
 * call it. -1 with err when that fails: the next call tries again (the
 * library may have been installed meanwhile). Once open, the library stays
 * loaded until the process ends. */
int dl_load(struct dl_lib *l, char *err, size_t errlen);

#endif
