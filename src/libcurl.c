#include "autoconfig.h"

#include <stdio.h>

#include "dl.h"
#include "libcurl.h"

/* CURLOPT_PROTOCOLS_STR, the newest thing the host uses, came in 7.85.0. */
#define MIN_VERSION 0x075500

struct libcurl libcurl;

#define SYM(field) DL_SYM(libcurl, "curl_", field)
static const struct dl_sym symbols[] = {
    SYM(global_init),	 SYM(version_info),	SYM(easy_init),
    SYM(easy_setopt),	 SYM(easy_getinfo),	SYM(easy_perform),
    SYM(easy_cleanup),	 SYM(easy_strerror),	SYM(slist_append),
    SYM(slist_free_all), SYM(getdate),		SYM(multi_init),
    SYM(multi_setopt),	 SYM(multi_add_handle), SYM(multi_remove_handle),
    SYM(multi_perform),	 SYM(multi_info_read),	SYM(multi_poll),
    SYM(multi_wakeup),	 SYM(multi_cleanup),
};

static int set_up(char *why, size_t len)
{
	const curl_version_info_data *v = libcurl.version_info(CURLVERSION_NOW);
	if (v->version_num < MIN_VERSION) {
		snprintf(why, len, "libcurl %s is too old (7.85.0 or later is needed)", v->version);
		return -1;
	}
	/* The host calls this on its delivery thread, with other threads
	 * running: dl_load's lock keeps ours from racing here, and a libcurl
	 * built thread-safe (7.84 or later, where C11 atomics are to hand)
	 * keeps the call safe against a plugin's own libcurl calls. */
	if (!(v->features & CURL_VERSION_THREADSAFE)) {
		snprintf(why, len, "libcurl %s was built without CURL_VERSION_THREADSAFE",
			 v->version);
		return -1;
	}
	CURLcode rc = libcurl.global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK) {
		snprintf(why, len, "cannot set up libcurl: %s", libcurl.easy_strerror(rc));
		return -1;
	}
	return 0;
}

static struct dl_lib lib = DL_LIB(LIBCURL_SONAME, symbols, &libcurl, set_up);

int libcurl_load(char *err, size_t errlen)
{
	return dl_load(&lib, err, errlen);
}

int libcurl_headers(const char *const *lines, struct curl_slist **out)
{
	struct curl_slist *h = NULL;
	for (; *lines; lines++) {
		struct curl_slist *l = libcurl.slist_append(h, *lines);
		if (!l) {
			libcurl.slist_free_all(h);
			return -1;
		}
		h = l;
	}
	*out = h;
	return 0;
}
