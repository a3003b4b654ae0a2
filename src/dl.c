#include "autoconfig.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "dl.h"

/* dlsym() returns functions as void *, which POSIX lets a function
 * pointer take. */
typedef void (*fn)(void);
_Static_assert(sizeof(void *) == sizeof(fn), "dlsym() can return a function");

static int open_table(struct dl_lib *l)
{
	void *h = dlopen(l->file, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(l->why, sizeof l->why, "cannot load %s: %s", l->file, dlerror());
		return -1;
	}
	for (size_t i = 0; i < l->nsyms; i++) {
		void *p = dlsym(h, l->syms[i].name);
		if (!p) {
			snprintf(l->why, sizeof l->why, "%s has no %s", l->file, l->syms[i].name);
			dlclose(h);
			return -1;
		}
		fn f;
		memcpy(&f, &p, sizeof f);
		memcpy((char *)l->table + l->syms[i].at, &f, sizeof f);
	}
	return 0;
}

int dl_load(struct dl_lib *l, char *err, size_t errlen)
{
	pthread_mutex_lock(&l->mu);
	if (!l->tried) {
		l->tried = 1;
		l->ok = !open_table(l) && (!l->then || !l->then(l->why, sizeof l->why));
	}
	int ok = l->ok;
	pthread_mutex_unlock(&l->mu);
	if (!ok)
		snprintf(err, errlen, "%s", l->why);
	return ok ? 0 : -1;
}
