/*
 * The config parser (src/config.c): the input is written to a file and
 * loaded with config_load(), as `aftercall check -c FILE` and `serve` do,
 * then freed. The variables the examples reference are set, so ${VAR}
 * expansion is exercised both ways (set, and the error for a missing one).
 *
 * Invariants: a config comes back if and only if no error was recorded;
 * every error line starts with the file name; a loaded config needs no
 * restart against itself (config_restart_needed walks every field).
 */
#include "fuzz.h"

#include <unistd.h>

#include "config.h"
#include "strbuf.h"

static char path[64];
static int fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const env[][2] = {
	    {"LIVEKIT_API_KEY", "APIexamplekey"},
	    {"LIVEKIT_API_SECRET", "example-secret-0123456789abcdef"},
	    {"TRANSCRIPT_TOKEN", "token-0123456789abcdef"},
	    {"MULTIMAIL_WEBHOOK_SECRET", "whsec_double_default_secret"},
	    {"MULTIMAIL_API_KEY", "mm_live_x"},
	    {"MULTIMAIL_MAILBOX_ID", "mbx_1"},
	    {"CRM_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	    {"SECRET", "s3cr3t"},
	    {"EMPTY", ""},
	};
	for (size_t i = 0; i < sizeof env / sizeof *env; i++)
		setenv(env[i][0], env[i][1], 1);
	unsetenv("AFTERCALL_FUZZ_UNSET");
	const char *tmp = getenv("TMPDIR");
	snprintf(path, sizeof path, "%s/fuzz_config.XXXXXX",
		 tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	fd = mkstemp(path);
	FZ_CHECK(fd >= 0, "mkstemp %s", path);
	return 0;
}

static void cleanup(void) __attribute__((destructor));
static void cleanup(void)
{
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate");
	FZ_CHECK(pwrite(fd, data, size, 0) == (ssize_t)size, "pwrite");

	struct strbuf errs;
	sb_init(&errs);
	struct config *c = config_load(path, &errs);
	if (c) {
		FZ_CHECK(errs.len == 0, "a config and errors: %s", errs.data);
		FZ_CHECK(!strcmp(c->file, path), "file %s", c->file);
		const char *why = config_restart_needed(c, c);
		FZ_CHECK(why == NULL, "restart needed against itself: %s", why);
		for (size_t i = 0; i < c->nplugins; i++)
			FZ_CHECK(c->plugins[i].name && c->plugins[i].config_json, "plugin %zu", i);
		for (size_t i = 0; i < c->nroutes; i++) {
			FZ_CHECK(c->routes[i].path && c->routes[i].path[0] == '/', "route %zu", i);
			for (size_t k = 0; k < c->routes[i].nchain; k++)
				FZ_CHECK(c->routes[i].chain[k] < c->nplugins, "chain %zu", k);
		}
		config_free(c);
	} else {
		FZ_CHECK(errs.len > 0 && !strncmp(errs.data, path, strlen(path)),
			 "no config and no error: %s", errs.data ? errs.data : "(none)");
	}
	sb_free(&errs);
	return 0;
}
