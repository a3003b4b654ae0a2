#include "autoconfig.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "libcurl.h"

/* CURLOPT_PROTOCOLS_STR, the newest thing the host uses, came in 7.85.0. */
#define MIN_VERSION 0x075500

static struct libcurl fns;
static const struct libcurl *loaded;
static char why[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const struct {
	const char *name;
	size_t at;
} symbols[] = {
#define SYM(field) {"curl_" #field, offsetof(struct libcurl, field)}
	SYM(easy_init),	       SYM(easy_setopt),	 SYM(easy_getinfo),
	SYM(easy_perform),     SYM(easy_cleanup),	 SYM(easy_strerror),
	SYM(slist_append),     SYM(slist_free_all),	 SYM(getdate),
	SYM(multi_init),       SYM(multi_setopt),	 SYM(multi_add_handle),
	SYM(multi_remove_handle), SYM(multi_perform),	 SYM(multi_info_read),
	SYM(multi_poll),       SYM(multi_wakeup),	 SYM(multi_cleanup),
#undef SYM
};

/* A function pointer from dlsym(), which POSIX lets a void * carry. */
typedef void (*fn)(void);
_Static_assert(sizeof(void *) == sizeof(fn), "dlsym() can return a function");

static fn sym(void *h, const char *name)
{
	void *p = dlsym(h, name);
	fn f;
	memcpy(&f, &p, sizeof f);
	return f;
}

static void load(void)
{
	void *h = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, sizeof why, "cannot load libcurl: %s", dlerror());
		return;
	}
	fn version = sym(h, "curl_version_info");
	fn global_init = sym(h, "curl_global_init");
	const curl_version_info_data *v =
		version ? ((curl_version_info_data * (*)(CURLversion)) version)(CURLVERSION_NOW) : NULL;
	if (!v || !global_init) {
		snprintf(why, sizeof why, "%s is not libcurl", LIBCURL_SONAME);
		return;
	}
	if (v->version_num < MIN_VERSION) {
		snprintf(why, sizeof why, "libcurl %s is too old (7.85.0 or later is needed)",
			 v->version);
		return;
	}
	for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
		fn f = sym(h, symbols[i].name);
		if (!f) {
			snprintf(why, sizeof why, "%s has no %s", LIBCURL_SONAME, symbols[i].name);
			return;
		}
		memcpy((char *)&fns + symbols[i].at, &f, sizeof f);
	}
	/* pthread_once keeps our own threads from racing here; libcurl 7.84
	 * and later make the call safe against other callers too. */
	CURLcode rc = ((CURLcode(*)(long))global_init)(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK) {
		snprintf(why, sizeof why, "cannot set up libcurl: %s", fns.easy_strerror(rc));
		return;
	}
	loaded = &fns;
}

const struct libcurl *libcurl_get(char *err, size_t errlen)
{
	pthread_once(&once, load);
	if (!loaded)
		snprintf(err, errlen, "%s", why);
	return loaded;
}
