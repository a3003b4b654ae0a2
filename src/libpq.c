#include "autoconfig.h"

#include "dl.h"
#include "libpq.h"

struct libpq libpq;

#define SYM(field) DL_SYM(libpq, "PQ", field)
static const struct dl_sym symbols[] = {
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

static struct dl_lib lib = DL_LIB(LIBPQ_SONAME, symbols, &libpq, NULL);

int libpq_load(char *err, size_t errlen)
{
	return dl_load(&lib, err, errlen);
}
