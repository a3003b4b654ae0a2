/*
 * libcurl, loaded when it is first wanted rather than linked.
 *
 * Linking libcurl maps it and some twenty libraries it links (OpenSSL's
 * libssl, Kerberos, LDAP, SSH, HTTP/2, ...) into every process at start:
 * about 1.8 MiB resident in a host that has not sent anything yet, and may
 * never send. The host therefore opens libcurl with dlopen() at its first
 * request and calls it through this table. The headers are libcurl's own,
 * so the compiler checks every call's types, except the variadic option
 * argument of easy_setopt, easy_getinfo and multi_setopt (libcurl's own
 * typecheck macros do not reach calls through a pointer).
 */
#ifndef AC_LIBCURL_H
#define AC_LIBCURL_H

#include <stddef.h>
#include <time.h>

#include <curl/curl.h>

struct libcurl {
	CURLcode (*global_init)(long flags);
	curl_version_info_data *(*version_info)(CURLversion v);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
	CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
	CURLcode (*easy_perform)(CURL *e);
	void (*easy_cleanup)(CURL *e);
	const char *(*easy_strerror)(CURLcode rc);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
	time_t (*getdate)(const char *s, const time_t *unused);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_perform)(CURLM *m, int *running);
	CURLMsg *(*multi_info_read)(CURLM *m, int *left);
	CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd extra[], unsigned n, int timeout_ms,
				int *numfds);
	CURLMcode (*multi_wakeup)(CURLM *m);
	CURLMcode (*multi_cleanup)(CURLM *m);
};

/* Filled by libcurl_load(); call it only after that succeeded (in this
 * thread, or in one this thread has synchronised with). */
extern struct libcurl libcurl;

/* Opens libcurl and runs curl_global_init(), once per process; any thread
 * may call it. -1 when that failed, now or at the first call, with err
 * saying why. libcurl stays loaded until the process ends. */
int libcurl_load(char *err, size_t errlen);

/* The header list of a request, from NULL-terminated "Name: value" lines.
 * -1 when memory ran out (nothing is left to free). */
int libcurl_headers(const char *const *lines, struct curl_slist **out);

#endif
