/* Store URLs as they may be shown: in logs, in check's summary, in errors.
 * Apart from store.c so that the config parser, which uses it, needs
 * nothing of the backends. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "store.h"

/* postgres://user:secret@host/db → postgres://user:(hidden)@host/db; a
 * password given as ?password= is hidden the same way. */
const char *store_display(const char *url)
{
	static _Thread_local char buf[512];
	snprintf(buf, sizeof buf, "%s", url);
	char *scheme = strstr(buf, "://");
	if (!scheme)
		return buf;
	char *auth = scheme + 3, *at = strchr(auth, '@'), *slash = strchr(auth, '/');
	char *colon = strchr(auth, ':');
	if (at && (!slash || at < slash) && colon && colon < at) {
		char rest[512];
		snprintf(rest, sizeof rest, "%s", at);
		snprintf(colon, sizeof buf - (size_t)(colon - buf), ":(hidden)%s", rest);
	}
	char *pw = strstr(buf, "password=");
	if (pw) {
		char *amp = strchr(pw, '&');
		char rest[512];
		snprintf(rest, sizeof rest, "%s", amp ? amp : "");
		snprintf(pw, sizeof buf - (size_t)(pw - buf), "password=(hidden)%s", rest);
	}
	return buf;
}
