/* Picks the store backend from the URL's scheme. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "store.h"

struct store *store_open(const char *url, int sync_full, int exclusive, char *err, size_t errlen)
{
	if (!strncmp(url, "sqlite:", 7) && url[7])
		return store_sqlite_open(url + 7, sync_full, exclusive, err, errlen);
	snprintf(err, errlen, "unsupported store \"%s\" (expected sqlite:PATH)", url);
	return NULL;
}
