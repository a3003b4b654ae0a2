/* The YAML config file: parsed with libyaml, checked in full, every error
 * named by file, line and key. */
#ifndef AC_CONFIG_H
#define AC_CONFIG_H

#include <stddef.h>

#include <aftercall/plugin.h>

#include "strbuf.h"
#include "verify_livekit.h"

enum verify_kind { VERIFY_LIVEKIT, VERIFY_HMAC, VERIFY_BEARER };
enum hmac_encoding { ENC_HEX, ENC_BASE64 };

struct verifier {
	enum verify_kind kind;
	char *header; /* HMAC: the header carrying the signature */
	char *prefix; /* HMAC: text before the signature ("sha256="), or "" */
	enum hmac_encoding encoding;
	char *secret; /* HMAC secret, or the bearer token */
};

struct route {
	char *path;   /* may hold one {name} segment: its text goes to the plugin */
	int is_get;   /* method: GET (a query answered by on_query) or POST */
	struct verifier *verify; /* a request passes when any of them accepts it */
	size_t nverify;
	/* The event type of every body on this route (e.g. "transcript"), or
	 * NULL: the body's own `event`, `type` or `event_type` field. */
	char *event_type;
	size_t *chain; /* indices into config.plugins, in order */
	size_t nchain;
};

struct plugin_conf {
	char *name;
	char *path;	   /* NULL: plugin_dir/NAME.so */
	char *config_json; /* the `config` section as a JSON object */
	int line;
};

struct config {
	char *file;
	char *listen_host; /* NULL: every interface */
	unsigned listen_port;
	char *store; /* "sqlite:PATH" */
	int store_sync_full;
	struct lk_key *keys;
	size_t nkeys;
	int leeway;
	size_t body_limit;
	unsigned read_timeout;
	unsigned request_timeout; /* a whole request, headers and body */
	unsigned max_connections;
	unsigned threads;
	unsigned outbox_concurrency;
	unsigned outbox_connect_timeout;
	unsigned outbox_timeout;
	unsigned outbox_retry_base_ms;
	unsigned outbox_retry_cap_ms;
	char *plugin_dir;
	char *templates_dir;   /* NULL: the stock folder */
	char *template_engine; /* NULL: "mustache" */
	ac_log_level log_level;
	struct plugin_conf *plugins;
	size_t nplugins;
	struct route *routes;
	size_t nroutes;
	int routes_given; /* the file has a routes section: plugins add none */
	int literal_secrets; /* the file holds a secret in clear */
	char *metrics_bearer; /* GET /metrics: this token, else loopback only */
};

#define DEFAULT_BODY_LIMIT (1024 * 1024)
#define DEFAULT_READ_TIMEOUT 10
#define DEFAULT_CONNECTIONS 1024
#define DEFAULT_LEEWAY 60
#define DEFAULT_OUTBOX_CONCURRENCY 32
#define DEFAULT_OUTBOX_CONNECT_TIMEOUT 5
#define DEFAULT_OUTBOX_TIMEOUT 30
#define DEFAULT_OUTBOX_RETRY_BASE_MS 1000
#define DEFAULT_OUTBOX_RETRY_CAP_MS (5 * 60 * 1000)

/* Loads and checks `file`. Returns the config, or NULL with one line per
 * error ("FILE:LINE: KEY: message") appended to errs. */
struct config *config_load(const char *file, struct strbuf *errs);
void config_free(struct config *c);
/* Appends the routes a plugin offers (ABI 1.7 `routes`), a JSON array in
 * the routes section's form without `plugins`; each is chained through
 * plugin `first` and those after it. Errors go to errs, each line
 * starting with `origin`. 0, or -1. */
int config_add_routes(struct config *c, const char *origin, const char *json, size_t first,
		      struct strbuf *errs);

/* What differs between two configs that a reload cannot take (the listen
 * address, the store, the plugins, the routes' shape, ...), or NULL when
 * `b` can replace `a` in a running process. */
const char *config_restart_needed(const struct config *a, const struct config *b);

/* Parses "12", "64KiB", "1MiB", "2M": returns 0 and sets *out, or -1. */
int config_parse_size(const char *s, size_t *out);

#endif
