#include "autoconfig.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "dl.h"

/* dlsym() returns functions as void *, which POSIX lets a function
 * pointer take. */
typedef void (*fn)(void);
_Static_assert(sizeof(void *) == sizeof(fn), "dlsym() can return a function");

static int open_table(struct dl_lib *l, char *err, size_t errlen)
{
	void *h = dlopen(l->file, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "cannot load %s: %s", l->file, dlerror());
		return -1;
	}
	for (size_t i = 0; i < l->nsyms; i++) {
		void *p = dlsym(h, l->syms[i].name);
		if (!p) {
			snprintf(err, errlen, "%s has no %s", l->file, l->syms[i].name);
			/* No pointer into the library outlives it. */
			memset(l->table, 0, l->size);
			dlclose(h);
			return -1;
		}
		fn f;
		memcpy(&f, &p, sizeof f);
		memcpy((char *)l->table + l->syms[i].at, &f, sizeof f);
	}
	l->handle = h;
	return 0;
}

int dl_load(struct dl_lib *l, char *err, size_t errlen)
{
	pthread_mutex_lock(&l->mu);
	if (!l->ok)
		l->ok = (l->handle || !open_table(l, err, errlen)) &&
			(!l->then || !l->then(err, errlen));
	int ok = l->ok;
	pthread_mutex_unlock(&l->mu);
	return ok ? 0 : -1;
}
