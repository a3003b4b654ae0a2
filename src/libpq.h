/*
 * libpq, loaded when a PostgreSQL store is opened rather than linked.
 *
 * Linking libpq maps it and the libraries it links (OpenSSL's libssl,
 * Kerberos, LDAP, SASL) into every process at start, about 1.3 MiB
 * resident in a host whose store is SQLite. The PostgreSQL backend opens
 * it with dlopen() instead and calls it through this table; the headers
 * are libpq's own, so the compiler checks every call's types.
 */
#ifndef AC_LIBPQ_H
#define AC_LIBPQ_H

#include <stddef.h>

#include <libpq-fe.h>

struct libpq {
	int (*libVersion)(void);
	PGconn *(*connectdbParams)(const char *const *keys, const char *const *values,
				   int expand_dbname);
	ConnStatusType (*status)(const PGconn *c);
	PGTransactionStatusType (*transactionStatus)(const PGconn *c);
	char *(*errorMessage)(const PGconn *c);
	void (*reset)(PGconn *c);
	void (*finish)(PGconn *c);
	PGresult *(*exec)(PGconn *c, const char *query);
	PGresult *(*prepare)(PGconn *c, const char *name, const char *query, int nparams,
			     const Oid *types);
	PGresult *(*execPrepared)(PGconn *c, const char *name, int nparams,
				  const char *const *values, const int *lengths, const int *formats,
				  int result_format);
	int (*sendQueryPrepared)(PGconn *c, const char *name, int nparams,
				 const char *const *values, const int *lengths, const int *formats,
				 int result_format);
	int (*setSingleRowMode)(PGconn *c);
	int (*sendQueryParams)(PGconn *c, const char *query, int nparams, const Oid *types,
			       const char *const *values, const int *lengths, const int *formats,
			       int result_format);
	int (*enterPipelineMode)(PGconn *c);
	int (*exitPipelineMode)(PGconn *c);
	int (*pipelineSync)(PGconn *c);
	PGresult *(*getResult)(PGconn *c);
	ExecStatusType (*resultStatus)(const PGresult *r);
	char *(*resultErrorMessage)(const PGresult *r);
	char *(*resultErrorField)(const PGresult *r, int code);
	char *(*cmdStatus)(PGresult *r);
	char *(*cmdTuples)(PGresult *r);
	int (*ntuples)(const PGresult *r);
	char *(*getvalue)(const PGresult *r, int row, int col);
	int (*getisnull)(const PGresult *r, int row, int col);
	unsigned char *(*unescapeBytea)(const unsigned char *s, size_t *len);
	void (*freemem)(void *p);
	void (*clear)(PGresult *r);
};

/* Filled by libpq_load(); call it only after that succeeded (in this
 * thread, or in one this thread has synchronised with). */
extern struct libpq libpq;

/* Opens libpq, once per process; any thread may call it. -1 when that
 * failed, now or at the first call, with err saying why (a libpq older than
 * 14.11, 15.6 or 16.2 is refused: see libpq.c). libpq stays loaded until
 * the process ends. */
int libpq_load(char *err, size_t errlen);

#endif
