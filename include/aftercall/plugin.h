/*
 * aftercall plugin ABI.
 *
 * A plugin is a shared object (.so) that exports one symbol,
 * `aftercall_plugin`, of type `const ac_plugin`. The host dlopen()s every
 * plugin named in its config, checks the descriptor, calls init() once, then
 * hands it events, timers and delivery outcomes, and finally calls destroy().
 *
 * Versioning. The first three fields of ac_plugin and of ac_host_services
 * are the ABI major, the ABI minor and the struct's own size: they protect
 * the rest. The host refuses a plugin whose major differs from its own or
 * whose minor is newer than its own, naming the file and both versions.
 * Fields are only ever appended, never reordered or removed; a field that
 * lies past the other side's struct_size is treated as absent (NULL).
 *
 * Threads. aftercall runs every plugin callback except init() and destroy()
 * on one thread, the dispatcher. Plugins therefore need no locks, and must
 * never block: no network or disk I/O of their own (use the outbox and the
 * key-value store). init() and destroy() run on the main thread, before the
 * dispatcher starts and after it stops.
 *
 * Transactions. Each event, timer and delivery callback runs inside the
 * store transaction of its batch. Everything the plugin writes through the
 * host services during the callback (key-value pairs, audit records, derived
 * events, outbox rows) is committed together with the event that caused it,
 * or not at all. A sender is answered 2xx only after that commit.
 *
 * Minimal plugin:
 *
 *	#include <aftercall/plugin.h>
 *
 *	static int init(const ac_host_services *svc, ac_host *host,
 *			const char *config_json, void **state,
 *			char *err, size_t errlen) { *state = NULL; return 0; }
 *	static ac_verdict on_event(void *state, const ac_event *ev,
 *			char *err, size_t errlen) { return AC_CONTINUE; }
 *	static void destroy(void *state) { }
 *
 *	AC_PLUGIN_EXPORT const ac_plugin aftercall_plugin = {
 *		AC_PLUGIN_HEADER,
 *		.name = "example", .version = "1.0",
 *		.init = init, .on_event = on_event, .destroy = destroy,
 *	};
 *
 * Build it with: cc -shared -fPIC $(pkg-config --cflags aftercall-plugin)
 */
#ifndef AFTERCALL_PLUGIN_H
#define AFTERCALL_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes. A host accepts plugins of the same major
 * and a minor at most its own. */
#define AC_PLUGIN_ABI_MAJOR 1u
#define AC_PLUGIN_ABI_MINOR 8u

/* The name of the symbol the host looks up with dlsym(). */
#define AC_PLUGIN_SYMBOL "aftercall_plugin"

/* Marks the descriptor for export even under -fvisibility=hidden. */
#define AC_PLUGIN_EXPORT __attribute__((visibility("default")))

/* The first three initialisers of an ac_plugin built against this header. */
#define AC_PLUGIN_HEADER                                                       \
	.abi_major = AC_PLUGIN_ABI_MAJOR, .abi_minor = AC_PLUGIN_ABI_MINOR,    \
	.struct_size = sizeof(ac_plugin)

/* One plugin instance's handle on the host. Opaque; pass it back to every
 * host service. */
typedef struct ac_host ac_host;

typedef enum ac_log_level {
	AC_LOG_DEBUG = 0,
	AC_LOG_INFO = 1,
	AC_LOG_WARN = 2,
	AC_LOG_ERROR = 3,
} ac_log_level;

/* What a plugin answers to an event. */
typedef enum ac_verdict {
	/* Pass the event on to the next plugin of the route's chain. */
	AC_CONTINUE = 0,
	/* Handled: the next plugins do not see it. The sender gets 2xx. */
	AC_STOP = 1,
	/* Failed: everything written for this event is rolled back and the
	 * sender gets 500, so it retries. The plugin says why in err. */
	AC_FAIL = -1,
	/* (ABI 1.3) The event is malformed for this plugin: everything written
	 * for it is rolled back, it is not journaled, and the sender gets 400
	 * with err as the reason (name the field: "to[2]: not an email
	 * address"). A sender must not retry it unchanged. */
	AC_REJECT = 2,
} ac_verdict;

/* An accepted event, as the dispatcher hands it to the chain. All pointers
 * are borrowed and valid only during the callback. */
typedef struct ac_event {
	/* The route it came in on ("/webhooks/livekit"), or the route of the
	 * event it was derived from. */
	const char *route;
	/* Its type: LiveKit's `event` ("room_finished"), another sender's
	 * `event` or `type` field, or the type a plugin gave to emit(). */
	const char *type;
	/* Its deduplication id: the body's `id`, or "sha256:" and the hex
	 * SHA-256 of the body when it has none. Derived events carry their
	 * parent's id. */
	const char *id;
	/* The raw JSON body, exactly as received (not NUL-terminated for
	 * received events; always NUL-terminated in practice, but use len). */
	const char *body;
	size_t body_len;
	/* When the host received it, in milliseconds since the epoch. */
	int64_t received_ms;
	/* The id the host gave the HTTP request; it follows the event into
	 * logs and audit records. */
	const char *request_id;
	/* 0 for a received event; 1 + the parent's depth for a derived one. */
	int depth;
} ac_event;

/* The result of an outbound request a plugin put in the outbox (see
 * outbox_enqueue and on_delivery). Borrowed, valid only during the
 * callback. */
typedef struct ac_delivery {
	/* The tag the plugin gave when it enqueued the request. */
	const char *tag;
	/* The idempotency key it was sent with. */
	const char *idempotency_key;
	/* Final HTTP status, or 0 when no answer was ever received. */
	int status;
	/* The last response body (may be empty) and its length. */
	const char *body;
	size_t body_len;
	/* How many attempts were made. */
	int attempts;
	/* 1 if the request succeeded (2xx), 0 if it was given up (dead). */
	int ok;
	/* The last error text, when there is one ("" otherwise). */
	const char *error;
} ac_delivery;

/* A rendered email, from the render service (ABI 1.1). Release with
 * render_free. */
typedef struct ac_rendered {
	char *subject; /* NULL when the template has no front matter */
	char *cc;      /* NULL when absent */
	char *bcc;     /* NULL when absent */
	char *body;    /* NUL-terminated Markdown */
	size_t body_len;
} ac_rendered;

/* An outbound HTTP request for the outbox (ABI 1.2). All pointers are
 * borrowed for the call: the host copies what it keeps. */
typedef struct ac_request {
	/* HTTP method; NULL means "POST". */
	const char *method;
	/* Required: an http:// or https:// URL. */
	const char *url;
	/* Header lines "Name: value", NULL-terminated; NULL for none. They are
	 * stored with the row; values of names holding "auth", "secret",
	 * "token", "signature", "key", "cookie", "pass", "credential" or
	 * "session" are hidden from `aftercall outbox show`, as are the URL's
	 * user information and query values. */
	const char *const *headers;
	/* The body (may be empty). */
	const char *body;
	size_t body_len;
	/* Required, at most 255 bytes, no control characters: names the
	 * request for good. A second enqueue with the same key by the same
	 * plugin is ignored, and every attempt carries it in an
	 * Idempotency-Key header (unless `headers` has one), so the receiver
	 * can drop a repeat. */
	const char *idempotency_key;
	/* The plugin's own label, given back in on_delivery (may be NULL). */
	const char *tag;
	/* Retry policy: at most this many attempts (0: 10) and for at most
	 * this long after enqueue (0: 24 hours). */
	int max_attempts;
	int64_t max_age_ms;
} ac_request;

/* A read-only request (ABI 1.4): a GET on a route of method GET, such as
 * /v1/contacts/{email}/history. Borrowed for the callback. */
typedef struct ac_query {
	const char *route;	/* the route's pattern */
	const char *param;	/* what stood for {...} in the path, decoded; or "" */
	const char *request_id;
} ac_query;

/* The answer to a query: the plugin sets status and a malloc'd JSON body
 * that the host sends and frees. */
typedef struct ac_response {
	int status;
	char *body;
	size_t body_len;
} ac_response;

/*
 * Services the host offers a plugin, given to init(). The table stays valid
 * until destroy() returns. Unless a field says otherwise, a service may be
 * called only from within an event, timer or delivery callback (that is, on
 * the dispatcher thread, inside the batch transaction); outside one it
 * fails with -1.
 */
typedef struct ac_host_services {
	/* The host's ABI version and sizeof(ac_host_services). */
	uint32_t abi_major;
	uint32_t abi_minor;
	uint32_t struct_size;

	/* Writes one log line (JSON on stderr) tagged with the plugin's name
	 * and, inside a callback, the current request id. Callable from any
	 * thread, at any time, including init() and destroy(). Never log a
	 * secret. */
	void (*log)(ac_host *host, ac_log_level level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/* The host's clock, in milliseconds since the epoch. Any thread. */
	int64_t (*now_ms)(ac_host *host);

	/*
	 * Key-value store, namespaced by plugin: keys of different plugins
	 * never meet. kv_put() stores `len` bytes under `key` (a NUL-terminated
	 * string of at most 255 bytes), replacing any earlier value. With
	 * due_ms > 0 the key is a durable timer: once the clock passes due_ms
	 * the dispatcher calls on_timer() with the key and its value and then
	 * deletes the key (unless on_timer put it again). Timers survive
	 * restarts. due_ms = 0 stores without expiry. Returns 0 or -1.
	 */
	int (*kv_put)(ac_host *host, const char *key, const void *value,
		      size_t len, int64_t due_ms);

	/* Looks a key up. Returns 1 and sets *value (malloc'd, NUL-terminated,
	 * release with host_free) and *len when found, 0 when absent, -1 on
	 * error. A key whose timer has not yet fired is still present. */
	int (*kv_get)(ac_host *host, const char *key, char **value,
		      size_t *len);

	/* Deletes a key (and its timer). Returns 0 (also when absent) or -1. */
	int (*kv_del)(ac_host *host, const char *key);

	/*
	 * Appends a record to the audit trail: `kind` says what happened
	 * ("email.queued"), `subject` what it is about (a room, a contact;
	 * may be NULL), `detail_json` a JSON object with the details (may be
	 * NULL). The host adds the time, the plugin's name and the request
	 * id, and chains the record to the previous one by SHA-256. Returns
	 * 0, or -1 (for instance when detail_json is not a JSON object).
	 */
	int (*audit)(ac_host *host, const char *kind, const char *subject,
		     const char *detail_json);

	/*
	 * Emits a derived event of type `type` with JSON body `json` (len
	 * bytes) to the plugins that follow the caller in the current chain.
	 * They see it after the caller's callback returns, inside the same
	 * transaction. Callable from on_event, on_timer and on_delivery.
	 * Returns 0 or -1 (derivation deeper than 8 levels is refused).
	 */
	int (*emit)(ac_host *host, const char *type, const char *json,
		    size_t len);

	/* Releases memory the host returned (kv_get values). Any thread. */
	void (*host_free)(void *p);

	/* ---- ABI 1.1 ---- */

	/*
	 * Renders the template `name` (the file NAME.md of the configured
	 * templates folder) with the configured engine against `context_json`
	 * (len bytes). The body's values are escaped for Markdown; subject, cc
	 * and bcc are plain one-line text. Returns 0 and fills *out, or -1 with
	 * a message in err (unknown template, engine error). Any thread, any
	 * time after init() began (but `aftercall check` runs init() with no
	 * templates behind it: render fails there); a SIGHUP reload never
	 * disturbs a render in progress.
	 */
	int (*render)(ac_host *host, const char *name, const char *context_json,
		      size_t len, ac_rendered *out, char *err, size_t errlen);

	/* Releases what render() filled in. Any thread. */
	void (*render_free)(ac_host *host, ac_rendered *out);

	/* ---- ABI 1.2 ---- */

	/*
	 * Puts an outbound HTTP request in the outbox, inside the current
	 * transaction: it exists if and only if the event that caused it is
	 * committed. The delivery thread sends it after the commit, retrying
	 * network errors, 408, 429 (honouring Retry-After) and 5xx with
	 * exponential backoff and full jitter; other answers are final. The
	 * outcome comes back through on_delivery. Returns 1 when queued, 0
	 * when this plugin already queued the same idempotency key, -1 on
	 * error (bad URL, missing key). Callable from on_event, on_timer and
	 * on_delivery.
	 */
	int (*outbox_enqueue)(ac_host *host, const ac_request *req);

	/* ---- ABI 1.5 ---- */

	/*
	 * Adds delta to one of the plugin's counters, shown on GET /metrics as
	 * aftercall_<plugin>_<name>_total, in the series label="value" (label
	 * NULL: a counter without labels). name and label: [a-z0-9_]; keep the
	 * values few (the 64th and later count as "other"). Any thread, any
	 * time. Counters are not transactional: a rolled-back event may have
	 * counted.
	 */
	void (*counter_add)(ac_host *host, const char *name, const char *label,
			    const char *value, double delta);

	/* ---- ABI 1.6 ---- */

	/* 1 when log() at `level` would write a line, 0 when the host drops
	 * it: skip the work of a line nobody reads. The level may change at
	 * a reload, so ask each time. Any thread, any time. */
	int (*log_enabled)(ac_host *host, ac_log_level level);

	/* ---- ABI 1.7 ---- */

	/*
	 * Declares that this plugin renders the template `name`: a SIGHUP
	 * reload of a templates folder without it (or with a NAME.md that has
	 * no front matter) is refused and the old templates kept, as for a
	 * folder that does not compile. Returns 0, or -1 with a message in
	 * err when no such template is loaded now. Only from init() (-1
	 * elsewhere), for the templates the plugin's config names.
	 */
	int (*template_require)(ac_host *host, const char *name, char *err,
				size_t errlen);
} ac_host_services;

/*
 * The descriptor a plugin exports as `aftercall_plugin`.
 */
typedef struct ac_plugin {
	/* Required, first: AC_PLUGIN_ABI_MAJOR, AC_PLUGIN_ABI_MINOR and
	 * sizeof(ac_plugin) as the plugin was built (use AC_PLUGIN_HEADER). */
	uint32_t abi_major;
	uint32_t abi_minor;
	uint32_t struct_size;

	/* Required. Short name ("multimail") and version string ("1.2.0"). */
	const char *name;
	const char *version;

	/*
	 * Required. Called once on the main thread before any other callback.
	 * `svc` and `host` are the plugin's handle on the host; keep them.
	 * `config_json` is the plugin's `config` section of the YAML file as
	 * a JSON object ("{}" when absent). Set *state to whatever the other
	 * callbacks should receive. Return 0, or -1 with a message in err
	 * (NUL-terminated, at most errlen bytes): the host then refuses to
	 * start and prints that message.
	 */
	int (*init)(const ac_host_services *svc, ac_host *host,
		    const char *config_json, void **state, char *err,
		    size_t errlen);

	/*
	 * Required. Called on the dispatcher thread for each new (not
	 * duplicate) event of a route whose chain holds this plugin, and for
	 * events derived by the plugins before it. Returns a verdict; with
	 * AC_FAIL, a message in err.
	 */
	ac_verdict (*on_event)(void *state, const ac_event *ev, char *err,
			       size_t errlen);

	/*
	 * Optional (required if the plugin stores keys with a due time).
	 * Called on the dispatcher thread when a key fell due, with its key
	 * and value; the key is deleted after the call unless the callback
	 * put it again. Return 0, or -1 to roll the timer back and have it
	 * retried on a later pass.
	 */
	int (*on_timer)(void *state, const char *key, const char *value,
			size_t len);

	/*
	 * Optional. Called on the dispatcher thread, inside a transaction,
	 * once per request this plugin enqueued, when it is settled: done (a
	 * 2xx) or dead (a final answer, or retries used up). Return 0, or -1
	 * to have the outcome offered again later.
	 */
	int (*on_delivery)(void *state, const ac_delivery *outcome);

	/* Required. Called once on the main thread after the last callback.
	 * Releases state. */
	void (*destroy)(void *state);

	/* ---- ABI 1.4 ---- */

	/*
	 * Optional. Answers a GET on a route whose chain holds this plugin
	 * (the first plugin of the chain that has on_query answers). Called
	 * on the dispatcher thread, inside a transaction: it may read the
	 * key-value store and enqueue outbox requests (say, to refresh a
	 * cache), but must not block. Fill *resp and return 0; return -1 for
	 * a 500.
	 */
	int (*on_query)(void *state, const ac_query *q, ac_response *resp);

	/* ---- ABI 1.7 ---- */

	/*
	 * Optional. The routes this plugin serves when the config file has no
	 * `routes` section, after the host's POST /webhooks/livekit: a JSON
	 * array in that section's form, objects with path, verify and
	 * optionally method and event_type. Each runs this plugin and those
	 * after it in the plugins list. ${VAR} is not expanded: give the
	 * values themselves (secrets from the plugin's own config). Called on
	 * the main thread after init(), again at each SIGHUP reload; return
	 * NULL for none. The text stays the plugin's, valid until destroy().
	 */
	const char *(*routes)(void *state);

	/* ---- ABI 1.8 ---- */

	/*
	 * Optional. Called on the dispatcher thread just before each attempt
	 * at a request this plugin enqueued, the first one included, with the
	 * request as stored (its tag, idempotency key, headers and body) and
	 * the attempt's number (1 for the first). It refreshes what must be
	 * made at send time, such as a signature with a timestamp a receiver
	 * checks: write header lines "Name: value", each ended by '\n', into
	 * `headers` (NUL-terminated, at most `size` bytes). Each line replaces
	 * the stored lines of that name for this attempt only; writing
	 * nothing sends the request as stored. Return 0, or -1 with a message
	 * in `headers`: the attempt is then not made and counts as a failed
	 * one. It must not use the key-value store, audit, emit or the
	 * outbox; log and now_ms are fine.
	 */
	int (*on_attempt)(void *state, const ac_request *req, unsigned attempt, char *headers,
			  size_t size);
} ac_plugin;

#ifdef __cplusplus
}
#endif

#endif /* AFTERCALL_PLUGIN_H */
