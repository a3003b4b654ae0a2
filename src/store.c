/* Picks the store backend from the URL's scheme. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "store.h"

struct store *store_open(const char *url, int sync_full, int flags, char *err, size_t errlen)
{
	if (!strncmp(url, "sqlite:", 7) && url[7])
		return store_sqlite_open(url + 7, sync_full, flags, err, errlen);
	if (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13))
		return store_pg_open(url, sync_full, flags, err, errlen);
	snprintf(err, errlen, "unsupported store \"%.200s\" (expected sqlite:PATH or postgres://...)",
		 url);
	return NULL;
}

const char *store_migration_what(int version)
{
	static const char *const what[STORE_SCHEMA_VERSION + 1] = {
		[1] = "journal, key-value pairs and timers, audit chain, outbox",
		[2] = "request ids on outbox rows and timers",
		[3] = "outbox claims name their host (PostgreSQL; nothing on SQLite)",
	};
	return version >= 1 && version <= STORE_SCHEMA_VERSION ? what[version] : "?";
}

void store_version_error(const char *name, int version, char *err, size_t errlen)
{
	if (version > STORE_SCHEMA_VERSION)
		snprintf(err, errlen,
			 "%s has schema version %d, newer than this aftercall's %d: run a newer "
			 "aftercall",
			 name, version, STORE_SCHEMA_VERSION);
	else
		snprintf(err, errlen,
			 "%s has schema version %d; this aftercall needs %d: back it up, then run "
			 "'aftercall migrate'",
			 name, version, STORE_SCHEMA_VERSION);
}
