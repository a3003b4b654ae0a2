#include "autoconfig.h"

#include <stdio.h>

#include "dl.h"
#include "libpq.h"

struct libpq libpq;

#define SYM(field) DL_SYM(libpq, "PQ", field)
static const struct dl_sym symbols[] = {
    SYM(libVersion),
    SYM(connectdbParams),
    SYM(status),
    SYM(transactionStatus),
    SYM(errorMessage),
    SYM(reset),
    SYM(finish),
    SYM(exec),
    SYM(prepare),
    SYM(execPrepared),
    SYM(sendQueryPrepared),
    SYM(setSingleRowMode),
    SYM(sendQueryParams),
    SYM(enterPipelineMode),
    SYM(exitPipelineMode),
    SYM(pipelineSync),
    SYM(getResult),
    SYM(resultStatus),
    SYM(resultErrorMessage),
    SYM(resultErrorField),
    SYM(cmdStatus),
    SYM(cmdTuples),
    SYM(ntuples),
    SYM(getvalue),
    SYM(getisnull),
    SYM(unescapeBytea),
    SYM(freemem),
    SYM(clear),
};

/* The store sends its statements in pipelines (libpq 14 and later). Two
 * fixes to pipeline mode came in minor releases, so the floor depends on
 * the major version: 14.5 stopped PQgetResult() losing a query's closing
 * NULL result, and 14.11, 15.6 and 16.2 (released together) keep the
 * pipeline in step after an error that is not the query's, such as a lost
 * connection, which before could leave the caller looping. */
static int new_enough(char *why, size_t len)
{
	int v = libpq.libVersion(); /* major * 10000 + minor, since 10 */
	int major = v / 10000, minor = v % 10000;
	static const int floor[][2] = {{14, 11}, {15, 6}, {16, 2}};
	int ok = major > 16;
	for (size_t i = 0; i < sizeof floor / sizeof floor[0]; i++)
		if (major == floor[i][0])
			ok = minor >= floor[i][1];
	if (ok)
		return 0;
	snprintf(why, len, "libpq %d.%d is too old (14.11, 15.6, 16.2 or later is needed)", major,
		 minor);
	return -1;
}

static struct dl_lib lib = DL_LIB(LIBPQ_SONAME, symbols, &libpq, new_enough);

int libpq_load(char *err, size_t errlen)
{
	return dl_load(&lib, err, errlen);
}
