/*
 * The command line: serve, check, sign, render, outbox, mailbox create,
 * audit, replay, migrate, version.
 */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "dispatch.h"
#include "random.h"
#include "http.h"
#include "libcurl.h"
#include "log.h"
#include "plugins.h"
#include "store.h"
#include "strbuf.h"
#include "templates.h"
#include "verify_livekit.h"

#include "api.h" /* plugin/multimail: the MultiMail client */

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/aftercall"
#endif
#ifndef PKGDATADIR
#define PKGDATADIR "/usr/local/share/aftercall"
#endif
#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif

#define DEFAULT_CONFIG SYSCONFDIR "/aftercall/aftercall.yaml"

static const char usage_main[] =
	"Usage: aftercall COMMAND [OPTIONS]\n"
	"\n"
	"aftercall receives LiveKit webhooks, verifies them, journals them durably\n"
	"and runs them through the plugins named in its config file.\n"
	"\n"
	"Commands:\n"
	"  serve [-c FILE]  run the service\n"
	"  check [-c FILE]  validate the config file and load its plugins\n"
	"  sign             print a LiveKit webhook token for a body\n"
	"  render           render a template against a JSON context\n"
	"  outbox           list, show, retry or cancel outbound requests\n"
	"  mailbox create   provision the agent's MultiMail mailbox\n"
	"  audit            print a room's or a contact's timeline; verify the chain\n"
	"  migrate          bring the store's schema up to this version's\n"
	"  replay           run journaled events through the plugins again\n"
	"  version          print the version and the plugin ABI\n"
	"\n"
	"Run 'aftercall COMMAND --help' for a command's options.\n";

static const char usage_serve[] =
	"Usage: aftercall serve [-c FILE]\n"
	"\n"
	"Runs the service: listens for webhooks, journals each accepted event in\n"
	"the store and runs it through the plugins. Logs are JSON lines on stderr.\n"
	"SIGTERM or SIGINT stops it after the events in progress are committed.\n"
	"SIGHUP reads the config again (keys, secrets, verifiers, body_size,\n"
	"request_timeout, the log level and the templates folder take effect; a\n"
	"file that does not load, or a change of listen, store, plugins, routes,\n"
	"read_timeout, connections or threads, keeps the running config and says\n"
	"why) and recompiles the templates, keeping the old ones if the new fail.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE  config file (default " DEFAULT_CONFIG ")\n"
	"  -h, --help         show this help\n";

static const char usage_check[] =
	"Usage: aftercall check [-c FILE]\n"
	"\n"
	"Validates the config file: every key, every ${VAR} reference, the routes\n"
	"and their verifiers; opens an existing store, which must have the schema\n"
	"this aftercall runs, as for serve; loads each plugin, checks its ABI and\n"
	"runs its init; loads the template engine and compiles every template.\n"
	"Prints each error with its line and key and exits 1 if there is any.\n"
	"Also loads libcurl, which serve opens at its first outbound request, and\n"
	"warns (without failing) when it cannot: that request would fail.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE  config file (default " DEFAULT_CONFIG ")\n"
	"  -h, --help         show this help\n";

static const char usage_sign[] =
	"Usage: aftercall sign --key KEY [--secret SECRET] [--ttl SECONDS] [--at UNIXTIME] [FILE]\n"
	"\n"
	"Prints the Authorization token LiveKit server would send with the body in\n"
	"FILE (standard input when FILE is absent or -): an HS256 JWT with header\n"
	"{\"alg\":\"HS256\",\"typ\":\"JWT\"} and claims iss, exp, nbf, iat, sha256.\n"
	"\n"
	"Options:\n"
	"  -k, --key KEY        API key (the token's issuer)\n"
	"  -s, --secret SECRET  API secret; the environment variable\n"
	"                       AFTERCALL_SIGN_SECRET is read when this is absent\n"
	"  -t, --ttl SECONDS    lifetime of the token, 1 to 31622400 (default 300)\n"
	"  -a, --at UNIXTIME    sign as if the clock read UNIXTIME (default now; at\n"
	"                       most 253402300799, the end of year 9999)\n"
	"  -h, --help           show this help\n";

static const char usage_render[] =
	"Usage: aftercall render [--engine NAME] [--escape html|markdown|text]\n"
	"                        [--partials DIR] TEMPLATE CONTEXT.json\n"
	"\n"
	"Renders TEMPLATE against the JSON in CONTEXT.json (- for standard input)\n"
	"and prints the result. A template with front matter prints\n"
	"'Subject: ...' (and 'Cc:', 'Bcc:' when set), a blank line, then the body;\n"
	"one without prints the body alone, byte for byte.\n"
	"\n"
	"Options:\n"
	"  -e, --engine NAME    template engine: a name looked up in\n"
	"                       " PKGLIBDIR ", or a path to a .so\n"
	"                       (default mustache)\n"
	"  -x, --escape MODE    how values in the body are escaped: markdown\n"
	"                       (default), html or text; the subject is always text\n"
	"  -p, --partials DIR   where partials are found (default: the template's folder)\n"
	"  -h, --help           show this help\n";

static const char usage_outbox[] =
	"Usage: aftercall outbox list [-c FILE] [--state STATE] [--limit N]\n"
	"       aftercall outbox show [-c FILE] ID\n"
	"       aftercall outbox retry [-c FILE] ID\n"
	"       aftercall outbox cancel [-c FILE] ID\n"
	"\n"
	"The outbox holds the outbound requests plugins made, in the store named\n"
	"by the config. States: pending (waiting for its next attempt), inflight\n"
	"(being sent), done (answered 2xx), dead (a final answer, retries used\n"
	"up, or cancelled). Works while serve runs.\n"
	"\n"
	"  list    one line per row, oldest first: id, state, attempts, last\n"
	"          status, plugin, idempotency key, and the last error or when the\n"
	"          next attempt is due\n"
	"  show    every field of one row; secret header values are hidden\n"
	"  retry   makes a dead row pending again, with a fresh retry budget\n"
	"  cancel  makes a pending row dead; its plugin is told\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE  config file (default " DEFAULT_CONFIG ")\n"
	"  -s, --state STATE  list only rows in STATE\n"
	"  -n, --limit N      list at most N rows (default: all)\n"
	"  -h, --help         show this help\n";

static const char usage_mailbox[] =
	"Usage: aftercall mailbox create LOCAL|ADDRESS [--display-name NAME]\n"
	"                                [--webhook-url URL] [--approval-code CODE]\n"
	"                                [--api-url URL]\n"
	"\n"
	"Creates the MultiMail mailbox LOCAL@<your MultiMail domain>, or ADDRESS\n"
	"(such as inbox@example.com) on a custom domain of yours, with the admin\n"
	"key in the environment variable MULTIMAIL_API_KEY (never on the command\n"
	"line). Prints the new mailbox's id and address. New mailboxes start in\n"
	"gated_send: every outbound email waits for a human's approval.\n"
	"\n"
	"Options:\n"
	"  -d, --display-name NAME  the name recipients see\n"
	"  -w, --webhook-url URL    where MultiMail posts this mailbox's events\n"
	"                           (aftercall's /webhooks/multimail)\n"
	"  -a, --approval-code CODE the operator's code, when MultiMail asked for one\n"
	"  -u, --api-url URL        MultiMail's API (default: $MULTIMAIL_API_URL, else\n"
	"                           " MM_DEFAULT_API_URL ")\n"
	"  -h, --help               show this help\n"
	"\n"
	"Exit status: 0 created; 3 an approval code is needed; 4 the address is\n"
	"taken; 2 a usage error (no MULTIMAIL_API_KEY, a bad LOCAL, ADDRESS or URL);\n"
	"1 any other error.\n";

static const char usage_audit[] =
	"Usage: aftercall audit [-c FILE] --room NAME\n"
	"       aftercall audit [-c FILE] --contact EMAIL\n"
	"       aftercall audit [-c FILE] --verify [--head N:HASH]\n"
	"\n"
	"The audit trail records every step of every session (event received,\n"
	"transcript received, email rendered, queued, accepted, approved or\n"
	"rejected, delivered or bounced, forwarded), each record chained to the one\n"
	"before by SHA-256.\n"
	"\n"
	"  -r, --room NAME      the timeline of a room: time, actor, step, details\n"
	"  -e, --contact EMAIL  the timeline of a contact\n"
	"                       (either: a timeline with no records exits 1)\n"
	"  -v, --verify         recompute the whole chain and print its head (N:HASH,\n"
	"                       the last record); exit 1 naming the first record\n"
	"                       that was edited, removed or reordered\n"
	"  -H, --head N:HASH    with --verify: record N must be there with that hash.\n"
	"                       Records removed from the end, or a chain rewritten\n"
	"                       with new hashes, show only against a head kept\n"
	"                       elsewhere from an earlier --verify\n"
	"  -c, --config FILE    config file (default " DEFAULT_CONFIG ")\n"
	"  -h, --help           show this help\n";

static const char usage_replay[] =
	"Usage: aftercall replay [-c FILE] [--route PATH] [--dry-run] ID...\n"
	"       aftercall replay [-c FILE] [--route PATH] [--dry-run] [--since WHEN] [--until WHEN]\n"
	"\n"
	"Runs journaled events through their routes' plugins again, as serve ran\n"
	"them when they came (same body, type and time received), one transaction\n"
	"each: after a template or a plugin's config was fixed, or a plugin such\n"
	"as forward was added. Events are found by id (the dedupe key serve\n"
	"answered with), or as every event received in a span of time, in journal\n"
	"order. They are not journaled again nor taken as duplicates. Each event\n"
	"accepted is recorded in the audit trail (event.replayed). What the\n"
	"plugins queue (emails, forwards) is left in the outbox for serve to send;\n"
	"a request queued before under the same idempotency key is not queued again,\n"
	"whatever became of it (outbox retry sends a dead one again).\n"
	"With SQLite, stop serve first; with PostgreSQL, hosts may keep running.\n"
	"Prints a line per event; exits 1 when one is not in the journal (or none\n"
	"was received in the span), its route is not in the config, or its plugins\n"
	"did not accept it again; 2 for a usage error.\n"
	"\n"
	"  -s, --since WHEN   the events received at WHEN or after: 2026-11-27T09:00:00Z\n"
	"                     (UTC, as replay prints it) or a time ago: 90s, 30m, 2h, 7d\n"
	"                     (default, with --until: from the journal's first row)\n"
	"  -u, --until WHEN   ... and before WHEN (default: now)\n"
	"  -r, --route PATH   only the event's journal row of this route\n"
	"  -n, --dry-run      list what would run; runs no plugin, needs no lock\n"
	"  -c, --config FILE  config file (default " DEFAULT_CONFIG ")\n"
	"  -h, --help         show this help\n";

static const char usage_migrate[] =
	"Usage: aftercall migrate [-c FILE] [--to N] [--status]\n"
	"\n"
	"Brings the store the config names up to the schema this aftercall needs,\n"
	"one step per transaction, printing each. Back the store up first. serve\n"
	"creates an empty store itself but refuses one of an older schema (and one\n"
	"of a newer schema always). With SQLite, stop serve first; with PostgreSQL,\n"
	"migrate once, from one machine: hosts of the previous version keep running\n"
	"on the new schema until they are upgraded.\n"
	"\n"
	"  -t, --to N         stop at schema N (default: this aftercall's)\n"
	"  -s, --status       print the store's schema and this aftercall's; exit 0\n"
	"                     when they match, 1 when not\n"
	"  -c, --config FILE  config file (default " DEFAULT_CONFIG ")\n"
	"  -h, --help         show this help\n";

static int opt_config(int argc, char **argv, const char *usage, const char **file)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;
	*file = DEFAULT_CONFIG;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			*file = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "aftercall: unexpected argument '%s'\n\n%s", argv[optind], usage);
		return 2;
	}
	return -1;
}

/* ---- loading ------------------------------------------------------------ */

/* Without a routes section, the routes the plugins offer (ABI 1.7) follow
 * the LiveKit one, each through its plugin and those after it. The
 * plugins have run init. 0, or -1 with errors in errs. */
static int add_plugin_routes(struct config *cfg, const struct plugin *plugins, size_t n,
			     struct strbuf *errs)
{
	int bad = 0;
	for (size_t i = 0; !cfg->routes_given && i < n; i++) {
		const ac_plugin *d = plugins[i].d;
		const char *json = plugins[i].inited && PLUGIN_HAS(d, routes) && d->routes
					   ? d->routes(plugins[i].state)
					   : NULL;
		char origin[300];
		snprintf(origin, sizeof origin, "%s: plugin %s", cfg->file, plugins[i].name);
		if (json && config_add_routes(cfg, origin, json, i, errs))
			bad = 1;
	}
	return bad ? -1 : 0;
}

struct loaded {
	struct config *cfg;
	struct plugin *plugins;
	size_t nplugins;
	struct engine engine;
	struct template_ref templates;
	const char *templates_dir; /* NULL: no templates */
};

static void loaded_free(struct loaded *l)
{
	if (l->plugins)
		for (size_t i = 0; i < l->nplugins; i++)
			plugin_unload(&l->plugins[i]);
	free(l->plugins);
	template_ref_free(&l->templates);
	engine_unload(&l->engine);
	config_free(l->cfg);
	memset(l, 0, sizeof *l);
}

/* The template engine and the templates folder. Without a `templates` key
 * the stock folder is used when it is installed; without one at all the
 * host runs with no templates (plugins that render then fail to), and
 * loads an engine only when the config names one, so that a wrong name is
 * still an error. */
static int load_templates(struct loaded *l, struct strbuf *errs)
{
	const struct config *c = l->cfg;
	const char *dir = c->templates_dir;
	if (!dir && access(PKGDATADIR "/templates", R_OK | X_OK) == 0)
		dir = PKGDATADIR "/templates";
	if (!dir && !c->template_engine)
		return 0;
	char err[1024];
	const char *pdir = c->plugin_dir ? c->plugin_dir : PKGLIBDIR;
	if (engine_load(&l->engine, c->template_engine ? c->template_engine : "mustache", pdir, err,
			sizeof err)) {
		sb_printf(errs, "%s: template_engine: %s\n", c->file, err);
		return -1;
	}
	if (!dir)
		return 0;
	l->templates.set = templates_load(&l->engine, dir, errs);
	if (!l->templates.set)
		return -1;
	l->templates_dir = dir;
	return 0;
}

/* Reads the config and dlopens every plugin. Errors go to errs. */
static int load(const char *file, struct loaded *l, struct strbuf *errs)
{
	memset(l, 0, sizeof *l);
	pthread_rwlock_init(&l->templates.lock, NULL);
	l->cfg = config_load(file, errs);
	if (!l->cfg)
		return -1;
	const char *dir = l->cfg->plugin_dir ? l->cfg->plugin_dir : PKGLIBDIR;
	l->plugins = calloc(l->cfg->nplugins ? l->cfg->nplugins : 1, sizeof *l->plugins);
	int bad = 0;
	for (size_t i = 0; i < l->cfg->nplugins; i++) {
		char err[1024];
		if (plugin_load(&l->plugins[i], &l->cfg->plugins[i], dir, err, sizeof err)) {
			sb_printf(errs, "%s:%d: plugins[%zu]: %s\n", file, l->cfg->plugins[i].line, i,
				  err);
			bad = 1;
		}
		l->nplugins = i + 1;
	}
	if (load_templates(l, errs))
		bad = 1;
	return bad ? -1 : 0;
}

/* SIGHUP: compile the folder anew; swap only if all of it compiled. */
static void reload_templates(struct loaded *l);

/* Configs replaced by a reload: requests that started under them may still
 * read them, so they live until exit. */
struct retired {
	struct config *cfg;
	struct retired *next;
};

static int same_dir(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* SIGHUP: read the config file again. Keys, secrets, verifiers, body_size,
 * the log level and the templates folder take effect for new requests;
 * a change that needs a restart (listen, store, plugins, routes' shape)
 * or a file that does not load keeps the running config, and says why. */
static void reload_config(const char *file, struct loaded *l, struct http *h,
			  struct retired **retired)
{
	struct strbuf errs;
	sb_init(&errs);
	struct config *fresh = config_load(file, &errs);
	if (!fresh) {
		log_fields(AC_LOG_ERROR, "SIGHUP: config not reloaded; keeping the running one",
			   "errors", errs.data ? errs.data : "", LOG_END);
		sb_free(&errs);
		return;
	}
	/* The running plugins offer their routes again; a change to the
	 * plugins themselves is reported as such, before any route error. */
	int routes_bad = add_plugin_routes(fresh, l->plugins, l->nplugins, &errs);
	const char *why = config_restart_needed(l->cfg, fresh);
	if (why) {
		log_fields(AC_LOG_ERROR,
			   "SIGHUP: config not reloaded: this change needs a restart; keeping the running one",
			   "changed", why, LOG_END);
		sb_free(&errs);
		config_free(fresh);
		return;
	}
	if (routes_bad) {
		log_fields(AC_LOG_ERROR, "SIGHUP: config not reloaded; keeping the running one",
			   "errors", errs.data ? errs.data : "", LOG_END);
		sb_free(&errs);
		config_free(fresh);
		return;
	}
	sb_free(&errs);
	struct retired *r = malloc(sizeof *r);
	if (!r) {
		config_free(fresh);
		return;
	}
	r->cfg = l->cfg;
	r->next = *retired;
	*retired = r;
	l->cfg = fresh;
	if (!same_dir(r->cfg->templates_dir, fresh->templates_dir) && fresh->templates_dir)
		l->templates_dir = fresh->templates_dir;
	http_set_config(h, fresh);
	log_set_level(fresh->log_level);
	char n[16];
	snprintf(n, sizeof n, "%zu", fresh->nkeys);
	log_fields(AC_LOG_INFO, "SIGHUP: config reloaded", "livekit_keys", n, LOG_END);
}

static void reload_templates(struct loaded *l)
{
	if (!l->templates_dir) {
		log_fields(AC_LOG_INFO, "SIGHUP: no templates folder to reload", LOG_END);
		return;
	}
	struct strbuf errs;
	sb_init(&errs);
	struct template_set *fresh = templates_load(&l->engine, l->templates_dir, &errs);
	if (!fresh) {
		log_fields(AC_LOG_ERROR, "SIGHUP: templates not reloaded; keeping the old ones",
			   "errors", errs.data ? errs.data : "", LOG_END);
		sb_free(&errs);
		return;
	}
	sb_free(&errs);
	char why[1024];
	/* Only the main thread writes the list (plugins' init), so it is read
	 * here without the lock. */
	if (template_check_required(&l->templates, fresh, why, sizeof why)) {
		log_fields(AC_LOG_ERROR, "SIGHUP: templates not reloaded; keeping the old ones",
			   "errors", why, LOG_END);
		templates_free(fresh);
		return;
	}
	pthread_rwlock_wrlock(&l->templates.lock);
	struct template_set *old = l->templates.set;
	l->templates.set = fresh;
	pthread_rwlock_unlock(&l->templates.lock);
	templates_free(old);
	char n[16];
	snprintf(n, sizeof n, "%zu", fresh->n);
	log_fields(AC_LOG_INFO, "SIGHUP: templates reloaded", "files", n, "dir", l->templates_dir,
		   LOG_END);
}

/* ---- serve -------------------------------------------------------------- */

/* Readiness, reloads and stops, told to systemd under Type=notify by its
 * protocol (sd_notify(3)): one datagram of VAR=value lines to the AF_UNIX
 * socket $NOTIFY_SOCKET names, "@" standing for the abstract namespace.
 * Nothing without NOTIFY_SOCKET. */
__attribute__((format(printf, 1, 2))) static void notify_systemd(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const char *why = NULL;
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof sa.sun_path)
		why = "NOTIFY_SOCKET is not an AF_UNIX socket path";
	else if (len < 0 || (size_t)len >= sizeof msg)
		why = "message too long";
	if (!why) {
		memcpy(sa.sun_path, path, n);
		if (path[0] == '@')
			sa.sun_path[0] = '\0';
		int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
		if (fd < 0 || sendto(fd, msg, (size_t)len, MSG_NOSIGNAL, (struct sockaddr *)&sa,
				     salen) != (ssize_t)len)
			why = strerror(errno);
		if (fd >= 0)
			close(fd);
	}
	if (why)
		log_fields(AC_LOG_WARN, "cannot notify systemd", "socket", path, "error", why,
			   LOG_END);
}

static int cmd_serve(int argc, char **argv)
{
	const char *file;
	int rc = opt_config(argc, argv, usage_serve, &file);
	if (rc >= 0)
		return rc;

	/* Signals are taken by sigwait() in this thread alone; every thread
	 * started from here on inherits the mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct strbuf errs;
	sb_init(&errs);
	struct loaded l;
	if (load(file, &l, &errs)) {
		fputs(errs.data ? errs.data : "", stderr);
		log_fields(AC_LOG_ERROR, "cannot start: bad config", "config", file, LOG_END);
		sb_free(&errs);
		loaded_free(&l);
		return 1;
	}
	sb_free(&errs);
	log_set_level(l.cfg->log_level);

	char err[1024];
	struct store *store = store_open(l.cfg->store, l.cfg->store_sync_full, STORE_SERVE, err, sizeof err);
	if (!store) {
		log_fields(AC_LOG_ERROR, "cannot start: store", "error", err, LOG_END);
		loaded_free(&l);
		return 1;
	}
	/* The dispatcher owns the plugins from here on. */
	struct dispatcher *d = dispatcher_new(l.cfg, store, &l.templates, l.plugins, l.nplugins, err,
					      sizeof err);
	if (!d) {
		log_fields(AC_LOG_ERROR, "cannot start", "error", err, LOG_END);
		free(l.plugins);
		l.plugins = NULL;
		loaded_free(&l);
		store_close(store);
		return 1;
	}
	if (add_plugin_routes(l.cfg, l.plugins, l.nplugins, &errs)) {
		fputs(errs.data ? errs.data : "", stderr);
		log_fields(AC_LOG_ERROR, "cannot start: a plugin's routes", "config", file, LOG_END);
		sb_free(&errs);
		rc = 1;
		goto out;
	}
	if (dispatcher_start(d)) {
		log_fields(AC_LOG_ERROR, "cannot start the dispatcher thread", LOG_END);
		rc = 1;
		goto out;
	}
	struct http *h = http_start(l.cfg, d, err, sizeof err);
	if (!h) {
		log_fields(AC_LOG_ERROR, "cannot start", "error", err, LOG_END);
		rc = 1;
		goto out;
	}
	struct retired *retired = NULL;
	char port[8];
	snprintf(port, sizeof port, "%u", http_port(h));
	log_fields(AC_LOG_INFO, "listening", "host", l.cfg->listen_host ? l.cfg->listen_host : "*",
		   "port", port, "store", store_display(l.cfg->store), "version", PACKAGE_VERSION, LOG_END);
	notify_systemd("READY=1\nSTATUS=listening on port %s\nMAINPID=%lu", port,
		       (unsigned long)getpid());

	for (;;) {
		int sig = 0;
		sigwait(&sigs, &sig);
		if (sig == SIGHUP) {
			notify_systemd("RELOADING=1");
			reload_config(file, &l, h, &retired);
			reload_templates(&l);
			notify_systemd("READY=1\nSTATUS=listening on port %s (reloaded)", port);
			continue;
		}
		log_fields(AC_LOG_INFO, "stopping", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT",
			   LOG_END);
		notify_systemd("STOPPING=1");
		break;
	}
	/* Stop taking connections, let the dispatcher commit and answer what
	 * it holds, then take the HTTP threads down. */
	http_quiesce(h);
	dispatcher_stop(d);
	http_stop(h);
	while (retired) {
		struct retired *next = retired->next;
		config_free(retired->cfg);
		free(retired);
		retired = next;
	}
	rc = 0;
out:
	dispatcher_free(d);
	free(l.plugins);
	l.plugins = NULL;
	loaded_free(&l);
	store_close(store);
	log_fields(AC_LOG_INFO, "stopped", LOG_END);
	return rc;
}

/* ---- check -------------------------------------------------------------- */

static int check_store(const struct config *cfg, struct strbuf *errs)
{
	if (strncmp(cfg->store, "sqlite:", 7))
		return 0; /* PostgreSQL: print_store_line() connects */
	const char *path = cfg->store + 7;
	char *copy = strdup(path);
	const char *dir = dirname(copy);
	int ok = access(dir, W_OK | X_OK) == 0;
	if (!ok)
		sb_printf(errs, "%s: store: directory %s is not writable: %s\n", cfg->file, dir,
			  strerror(errno));
	free(copy);
	return ok ? 0 : -1;
}

/* The store and its schema, for check: an existing store is opened (read
 * only in effect) for its version; a missing SQLite file is not created.
 * What serve would refuse (a store it cannot open, a schema it does not
 * run) is an error; otherwise *line says what there is. */
static int check_store_schema(const struct config *cfg, char *line, size_t linelen,
			      struct strbuf *errs)
{
	char err[512];
	int sqlite = !strncmp(cfg->store, "sqlite:", 7);
	if (sqlite && access(cfg->store + 7, F_OK) != 0) {
		snprintf(line, linelen, "%s (created at first start)", cfg->store);
		return 0;
	}
	/* EXISTING too: an empty file is read, not given WAL mode. */
	struct store *st = store_open(cfg->store, cfg->store_sync_full,
				      STORE_MIGRATE | STORE_EXISTING, err, sizeof err);
	if (!st) {
		sb_printf(errs, "%s: store: %s\n", cfg->file, err);
		return -1;
	}
	int v = store_schema_version(st);
	store_close(st);
	if (v != 0 && v != STORE_SCHEMA_VERSION) {
		store_version_error(store_display(cfg->store), v, err, sizeof err);
		sb_printf(errs, "%s: store: %s\n", cfg->file, err);
		return -1;
	}
	if (v == 0)
		snprintf(line, linelen, "%s (created at first start)", store_display(cfg->store));
	else
		snprintf(line, linelen, "%s (schema %d)", store_display(cfg->store), v);
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	const char *file;
	int rc = opt_config(argc, argv, usage_check, &file);
	if (rc >= 0)
		return rc;
	struct strbuf errs;
	sb_init(&errs);
	struct loaded l;
	int bad = load(file, &l, &errs);
	char store_line[1200] = "";
	if (!bad)
		bad = check_store(l.cfg, &errs) || check_store_schema(l.cfg, store_line,
								      sizeof store_line, &errs);
	/* Run each plugin's init so it can judge its own config, with the
	 * templates serve would give it. */
	/* An array of pointers: the handles are the dispatcher's, opaque here. */
	struct ac_host **hosts =
		calloc(l.nplugins ? l.nplugins : 1, sizeof *hosts); // NOLINT(bugprone-sizeof-expression)
	if (!hosts) {
		sb_printf(&errs, "%s: out of memory\n", file);
		bad = 1;
	}
	for (size_t i = 0; !bad && i < l.nplugins; i++) {
		char err[1024];
		hosts[i] = dispatcher_check_host(&l.plugins[i], l.templates.set ? &l.templates : NULL);
		if (!hosts[i]) {
			sb_printf(&errs, "%s: out of memory\n", file);
			bad = 1;
		} else if (plugin_init(&l.plugins[i], &host_services, hosts[i],
				       l.cfg->plugins[i].config_json, err, sizeof err)) {
			sb_printf(&errs, "%s:%d: plugins[%zu]: %s\n", file, l.cfg->plugins[i].line, i,
				  err);
			bad = 1;
		}
	}
	if (!bad && add_plugin_routes(l.cfg, l.plugins, l.nplugins, &errs))
		bad = 1;
	/* serve opens libcurl at its first send; a missing one is found here
	 * rather than by the first email that cannot leave. */
	char why[256];
	int curl_ok = libcurl_load(why, sizeof why) == 0;
	if (!curl_ok)
		fprintf(stderr, "%s: warning: outbound requests (the outbox) will fail: %s\n", file,
			why);
	struct stat sb;
	if (l.cfg && l.cfg->literal_secrets && stat(file, &sb) == 0 && (sb.st_mode & 0044))
		fprintf(stderr,
			"%s: warning: the file holds secrets in clear and other users can read it"
			" (mode %04o); chmod 600 it, or give the secrets as ${VAR}\n",
			file, (unsigned)(sb.st_mode & 07777));
	if (bad) {
		fputs(errs.data ? errs.data : "", stderr);
		fprintf(stderr, "%s: not valid\n", file);
	} else {
		printf("%s: OK\n", file);
		printf("  listen  %s:%u\n", l.cfg->listen_host ? l.cfg->listen_host : "*",
		       l.cfg->listen_port);
		printf("  store   %s\n", store_line);
		for (size_t i = 0; i < l.cfg->nroutes; i++) {
			const struct route *r = &l.cfg->routes[i];
			static const char *const kinds[] = {"livekit", "hmac", "bearer"};
			printf("  route   %s %s  verify=", r->is_get ? "GET" : "POST", r->path);
			for (size_t k = 0; k < r->nverify; k++)
				printf("%s%s", k ? "|" : "", kinds[r->verify[k].kind]);
			if (r->event_type)
				printf("  event_type=%s", r->event_type);
			printf("  plugins=");
			for (size_t j = 0; j < r->nchain; j++)
				printf("%s%s", j ? "," : "", l.cfg->plugins[r->chain[j]].name);
			printf("%s\n", r->nchain ? "" : "(none)");
		}
		if (curl_ok)
			printf("  outbox  libcurl %s\n",
			       libcurl.version_info(CURLVERSION_NOW)->version);
		for (size_t i = 0; i < l.nplugins; i++)
			printf("  plugin  %s %s (ABI %u.%u) %s\n", l.plugins[i].name,
			       l.plugins[i].d->version ? l.plugins[i].d->version : "",
			       l.plugins[i].d->abi_major, l.plugins[i].d->abi_minor,
			       l.plugins[i].file);
		if (l.templates.set) {
			printf("  engine  %s %s %s\n", l.engine.e->name,
			       l.engine.e->version ? l.engine.e->version : "", l.engine.file);
			printf("  templates %s:", l.templates_dir);
			for (size_t i = 0; i < l.templates.set->n; i++)
				if (l.templates.set->files[i].has_front)
					printf(" %s", l.templates.set->files[i].name);
			printf("\n");
		} else {
			printf("  templates (none)\n");
		}
	}
	sb_free(&errs);
	size_t nhosts = l.nplugins;
	loaded_free(&l);
	for (size_t i = 0; hosts && i < nhosts; i++)
		free(hosts[i]);
	free(hosts);
	return bad ? 1 : 0;
}

/* ---- sign --------------------------------------------------------------- */

/* The whole of PATH, or of stdin for "-"; NULL, said on stderr as CMD's
 * error, when it cannot be opened or read. */
static char *read_input(const char *cmd, const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "aftercall %s: cannot open %s: %s\n", cmd, path, strerror(errno));
		return NULL;
	}
	struct strbuf b;
	sb_init(&b);
	char buf[65536];
	size_t n;
	errno = 0;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		sb_add(&b, buf, n);
	int bad = ferror(f) ? (errno ? errno : EIO) : 0; /* a read error is never 0 */
	if (f != stdin)
		fclose(f);
	if (bad) {
		fprintf(stderr, "aftercall %s: cannot read %s: %s\n", cmd, path, strerror(bad));
		sb_free(&b);
		return NULL;
	}
	if (!b.data)
		sb_add(&b, "", 0);
	*len = b.len;
	return sb_steal(&b);
}

static int parse_long(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno)
		return -1;
	*out = v;
	return 0;
}

static int cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'}, {"secret", required_argument, NULL, 's'},
		{"ttl", required_argument, NULL, 't'}, {"at", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
	};
	const char *key = NULL, *secret = NULL;
	long long ttl = 300, at = (long long)time(NULL);
	int ch;
	while ((ch = getopt_long(argc, argv, "k:s:t:a:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'k':
			key = optarg;
			break;
		case 's':
			secret = optarg;
			break;
		case 't':
			if (parse_long(optarg, &ttl) || ttl < 1 || ttl > 86400 * 366) {
				fprintf(stderr, "aftercall sign: bad --ttl '%s'\n", optarg);
				return 2;
			}
			break;
		case 'a':
			/* Up to the end of year 9999: exp = at + ttl stays a time. */
			if (parse_long(optarg, &at) || at < 0 || at > 253402300799LL) {
				fprintf(stderr,
					"aftercall sign: bad --at '%s' (seconds since 1970, up to "
					"253402300799)\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			fputs(usage_sign, stdout);
			return 0;
		default:
			fputs(usage_sign, stderr);
			return 2;
		}
	}
	if (!secret)
		secret = getenv("AFTERCALL_SIGN_SECRET");
	if (!key || !*key) {
		fprintf(stderr, "aftercall sign: --key is required (the API key, as in livekit.yaml)\n\n%s",
			usage_sign);
		return 2;
	}
	if (!secret || !*secret) {
		fprintf(stderr,
			"aftercall sign: the secret is required: --secret, or AFTERCALL_SIGN_SECRET in"
			" the environment\n\n%s",
			usage_sign);
		return 2;
	}
	if (argc - optind > 1) {
		fprintf(stderr, "aftercall sign: one FILE at most\n\n%s", usage_sign);
		return 2;
	}
	const char *path = optind < argc ? argv[optind] : "-";
	size_t len;
	char *body = read_input("sign", path, &len);
	if (!body)
		return 1;
	char *tok = lk_sign(key, secret, body, len, at, (int)ttl);
	free(body);
	if (!tok)
		return 1;
	puts(tok);
	free(tok);
	return 0;
}

/* ---- render ------------------------------------------------------------- */

static int cmd_render(int argc, char **argv)
{
	static const struct option opts[] = {
		{"engine", required_argument, NULL, 'e'},   {"escape", required_argument, NULL, 'x'},
		{"partials", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *engine_name = "mustache", *partials = NULL;
	ac_escape esc = AC_ESCAPE_MARKDOWN;
	int ch;
	while ((ch = getopt_long(argc, argv, "e:x:p:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'e':
			engine_name = optarg;
			break;
		case 'x':
			if (!strcmp(optarg, "html"))
				esc = AC_ESCAPE_HTML;
			else if (!strcmp(optarg, "markdown"))
				esc = AC_ESCAPE_MARKDOWN;
			else if (!strcmp(optarg, "text"))
				esc = AC_ESCAPE_TEXT;
			else {
				fprintf(stderr, "aftercall render: --escape is html, markdown or text\n");
				return 2;
			}
			break;
		case 'p':
			partials = optarg;
			break;
		case 'h':
			fputs(usage_render, stdout);
			return 0;
		default:
			fputs(usage_render, stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "aftercall render: TEMPLATE and CONTEXT.json are required\n\n%s",
			usage_render);
		return 2;
	}
	const char *tfile = argv[optind], *cfile = argv[optind + 1];
	size_t clen;
	char *ctx = read_input("render", cfile, &clen);
	if (!ctx)
		return 1;
	/* Templates read the fields of an object, as serve gives them. */
	json_error_t jerr;
	json_t *cj = json_loadb(ctx, clen, JSON_REJECT_DUPLICATES, &jerr);
	int is_object = json_is_object(cj);
	json_decref(cj);
	if (!is_object) {
		if (cj)
			fprintf(stderr, "aftercall render: %s: expected a JSON object\n", cfile);
		else
			fprintf(stderr, "aftercall render: %s: line %d, column %d: %s\n", cfile,
				jerr.line, jerr.column, jerr.text);
		free(ctx);
		return 1;
	}
	char err[1024];
	struct engine eng;
	if (engine_load(&eng, engine_name, PKGLIBDIR, err, sizeof err)) {
		fprintf(stderr, "aftercall render: %s\n", err);
		engine_unload(&eng);
		free(ctx);
		return 1;
	}
	char *dircopy = strdup(tfile);
	struct strbuf errs;
	sb_init(&errs);
	const char *pdir = partials ? partials : dirname(dircopy);
	struct template_set *set = templates_load_file(&eng, tfile, pdir, &errs);
	int rc = 1;
	if (!set) {
		/* The template compiled when the first error names another file:
		 * a partial of its folder, which is loaded whole. */
		size_t n = strlen(tfile);
		if (errs.data && (strncmp(errs.data, tfile, n) || errs.data[n] != ':'))
			fprintf(stderr,
				"aftercall render: %s compiles, but its partials folder %s does not"
				" (serve refuses such a folder too):\n",
				tfile, pdir);
		fputs(errs.data ? errs.data : "aftercall render: cannot load the template\n", stderr);
	} else {
		struct rendered r;
		if (templates_render(set, templates_find_path(set, tfile), ctx, clen, esc, &r, err, sizeof err)) {
			fprintf(stderr, "aftercall render: %s\n", err);
		} else {
			if (r.subject) {
				printf("Subject: %s\n", r.subject);
				if (r.cc && *r.cc)
					printf("Cc: %s\n", r.cc);
				if (r.bcc && *r.bcc)
					printf("Bcc: %s\n", r.bcc);
				printf("\n");
			}
			fwrite(r.body, 1, r.body_len, stdout);
			rc = fflush(stdout) ? 1 : 0;
			rendered_free(&r);
		}
	}
	sb_free(&errs);
	templates_free(set);
	free(dircopy);
	engine_unload(&eng);
	free(ctx);
	return rc;
}

/* ---- commands on the store ----------------------------------------------- */

/* The store the config names, opened beside a running serve. NULL after
 * printing why. */
static struct store *open_store_of(const char *file, const char *cmd)
{
	struct strbuf errs;
	sb_init(&errs);
	struct config *cfg = config_load(file, &errs);
	if (!cfg) {
		fputs(errs.data ? errs.data : "", stderr);
		sb_free(&errs);
		return NULL;
	}
	sb_free(&errs);
	char err[1024];
	struct store *st = store_open(cfg->store, cfg->store_sync_full, STORE_EXISTING, err,
				      sizeof err);
	config_free(cfg);
	if (!st)
		fprintf(stderr, "aftercall %s: %s\n", cmd, err);
	return st;
}

/* ---- outbox ------------------------------------------------------------- */

static void print_time(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char buf[32];
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs(buf, stdout);
}

static int print_line(void *ctx, const struct outbox_row *r)
{
	int64_t *last = ctx;
	*last = r->id;
	printf("%-8lld %-9s %8d %6d  %-12s %-42s ", (long long)r->id, r->state, r->attempts,
	       r->last_status, r->plugin, r->idem_key);
	if (!strcmp(r->state, "pending")) {
		fputs("next ", stdout);
		print_time(r->next_ms);
	} else if (r->last_error) {
		fputs(r->last_error, stdout);
	}
	putchar('\n');
	return 0;
}

/* Headers whose values are secrets are shown by name only. */
static int secret_header(const char *line)
{
	static const char *const words[] = {"auth",	"secret", "token",	"signature", "key",
					    "cookie", "pass",	  "credential", "session",   NULL};
	const char *colon = strchr(line, ':');
	size_t n = colon ? (size_t)(colon - line) : strlen(line);
	for (int i = 0; words[i]; i++)
		for (size_t k = 0; k + strlen(words[i]) <= n; k++)
			if (!strncasecmp(line + k, words[i], strlen(words[i])))
				return 1;
	return 0;
}

/* A URL with what may be credentials hidden: the user information before
 * the host, and each value of the query. */
static void print_url(const char *url)
{
	const char *p = url, *scheme = strstr(url, "://");
	if (scheme) {
		const char *host = scheme + 3, *end = host + strcspn(host, "/?#");
		const char *at = memchr(host, '@', (size_t)(end - host));
		fwrite(url, 1, (size_t)(host - url), stdout);
		if (at) {
			fputs("(hidden)@", stdout);
			host = at + 1;
		}
		fwrite(host, 1, (size_t)(end - host), stdout);
		p = end;
	}
	const char *q = strchr(p, '?');
	if (!q) {
		fputs(p, stdout);
		return;
	}
	fwrite(p, 1, (size_t)(q + 1 - p), stdout);
	for (q++; *q && *q != '#';) {
		size_t pair = strcspn(q, "&#"), name = strcspn(q, "=&#");
		fwrite(q, 1, name, stdout);
		if (name < pair)
			fputs("=(hidden)", stdout);
		q += pair;
		if (*q == '&')
			putchar(*q++);
	}
	fputs(q, stdout);
}

static void print_body(const char *label, const char *body, size_t len)
{
	printf("%s (%zu bytes):\n", label, len);
	fwrite(body ? body : "", 1, len, stdout);
	if (len && body[len - 1] != '\n')
		putchar('\n');
}

static int print_row(void *ctx, const struct outbox_row *r)
{
	printf("id:           %lld\n", (long long)r->id);
	printf("state:        %s\n", r->state);
	printf("plugin:       %s\n", r->plugin);
	printf("tag:          %s\n", r->tag ? r->tag : "");
	printf("key:          %s\n", r->idem_key);
	printf("request:      %s ", r->method);
	print_url(r->url);
	putchar('\n');
	printf("attempts:     %d of at most %d\n", r->attempts, r->max_attempts);
	printf("created:      ");
	print_time(r->created_ms);
	printf("\ngives up:     ");
	print_time(r->created_ms + r->max_age_ms);
	if (!strcmp(r->state, "pending")) {
		printf("\nnext attempt: ");
		print_time(r->next_ms);
	}
	printf("\nlast status:  %d\n", r->last_status);
	printf("last error:   %s\n", r->last_error ? r->last_error : "");
	printf("headers:\n");
	json_t *h = json_loads(r->headers, 0, NULL);
	size_t i;
	json_t *v;
	json_array_foreach(h, i, v)
	{
		const char *line = json_string_value(v);
		if (!line)
			continue;
		if (secret_header(line))
			printf("  %.*s: (hidden)\n", (int)strcspn(line, ":"), line);
		else
			printf("  %s\n", line);
	}
	json_decref(h);
	print_body("body", r->body, r->body_len);
	print_body("last answer", r->last_body, r->last_body_len);
	return 0;
}

struct row_state {
	char state[16];
};

static int copy_state(void *ctx, const struct outbox_row *r)
{
	snprintf(((struct row_state *)ctx)->state, sizeof ((struct row_state *)ctx)->state, "%s",
		 r->state);
	return 1;
}

static int parse_id(const char *s, int64_t *id)
{
	long long v;
	if (parse_long(s, &v) || v <= 0)
		return -1;
	*id = v;
	return 0;
}

static int cmd_outbox(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"state", required_argument, NULL, 's'},
		{"limit", required_argument, NULL, 'n'},  {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = DEFAULT_CONFIG, *state = NULL;
	long long limit = -1;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:s:n:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 's':
			state = optarg;
			if (strcmp(state, "pending") && strcmp(state, "inflight") &&
			    strcmp(state, "done") && strcmp(state, "dead")) {
				fprintf(stderr, "aftercall outbox: --state is pending, inflight, done "
						"or dead\n");
				return 2;
			}
			break;
		case 'n':
			if (parse_long(optarg, &limit) || limit < 0) {
				fprintf(stderr, "aftercall outbox: bad --limit '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			fputs(usage_outbox, stdout);
			return 0;
		default:
			fputs(usage_outbox, stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fputs(usage_outbox, stderr);
		return 2;
	}
	const char *verb = argv[optind++];
	int is_list = !strcmp(verb, "list");
	if (!is_list && strcmp(verb, "show") && strcmp(verb, "retry") && strcmp(verb, "cancel")) {
		fprintf(stderr, "aftercall outbox: unknown action '%s'\n\n%s", verb, usage_outbox);
		return 2;
	}
	int64_t id = 0;
	if (!is_list && argc - optind == 1 && parse_id(argv[optind], &id)) {
		fprintf(stderr, "aftercall outbox %s: a row ID is a number (as outbox list shows),"
				" not '%s'\n",
			verb, argv[optind]);
		return 2;
	}
	if (!is_list && argc - optind != 1) {
		fprintf(stderr, "aftercall outbox %s: one row ID is required\n", verb);
		return 2;
	}
	if (is_list && optind < argc) {
		fprintf(stderr, "aftercall outbox list: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	struct store *st = open_store_of(file, "outbox");
	if (!st)
		return 1;
	int rc = 0;
	if (is_list) {
		/* Pages of 500 rows: memory stays flat however long the outbox. */
		int64_t after = 0;
		long long left = limit;
		printf("%-8s %-9s %8s %6s  %-12s %-42s %s\n", "ID", "STATE", "ATTEMPTS", "LAST",
		       "PLUGIN", "KEY", "NEXT / LAST ERROR");
		for (;;) {
			int page = left >= 0 && left < 500 ? (int)left : 500;
			if (page == 0)
				break;
			int n = store_outbox_list(st, state, after, page, print_line, &after);
			if (n < 0) {
				fprintf(stderr, "aftercall outbox: %s\n", store_errmsg(st));
				rc = 1;
				break;
			}
			if (left >= 0)
				left -= n;
			if (n < page)
				break;
		}
	} else if (!strcmp(verb, "show")) {
		int n = store_outbox_get(st, id, print_row, NULL);
		if (n <= 0) {
			fprintf(stderr, "aftercall outbox: no row %lld\n", (long long)id);
			rc = 1;
		}
	} else {
		int is_retry = !strcmp(verb, "retry");
		int n = -1;
		if (store_begin(st) == 0) {
			n = is_retry ? store_outbox_retry(st, id, (int64_t)time(NULL) * 1000)
				     : store_outbox_cancel(st, id);
			if (n < 0 || store_commit(st))
				store_rollback(st), n = -1;
		}
		if (n < 0) {
			fprintf(stderr, "aftercall outbox: %s\n", store_errmsg(st));
			rc = 1;
		} else if (n == 0) {
			struct row_state rs = {0};
			if (store_outbox_get(st, id, copy_state, &rs) <= 0)
				fprintf(stderr, "aftercall outbox: no row %lld\n", (long long)id);
			else
				fprintf(stderr, "aftercall outbox: row %lld is %s, not %s\n",
					(long long)id, rs.state, is_retry ? "dead" : "pending");
			rc = 1;
		} else {
			printf("row %lld: %s\n", (long long)id,
			       is_retry ? "pending again" : "cancelled (dead)");
		}
	}
	store_close(st);
	return rc;
}

/* ---- mailbox ------------------------------------------------------------ */

static int cmd_mailbox(int argc, char **argv)
{
	static const struct option opts[] = {
		{"display-name", required_argument, NULL, 'd'},
		{"webhook-url", required_argument, NULL, 'w'},
		{"approval-code", required_argument, NULL, 'a'},
		{"api-url", required_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *display = NULL, *webhook = NULL, *code = NULL;
	const char *api = getenv("MULTIMAIL_API_URL");
	int ch;
	while ((ch = getopt_long(argc, argv, "d:w:a:u:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			display = optarg;
			break;
		case 'w':
			webhook = optarg;
			break;
		case 'a':
			code = optarg;
			break;
		case 'u':
			api = optarg;
			break;
		case 'h':
			fputs(usage_mailbox, stdout);
			return 0;
		default:
			fputs(usage_mailbox, stderr);
			return 2;
		}
	}
	if (optind == argc) {
		fprintf(stderr, "aftercall mailbox: the action is required: create\n\n%s",
			usage_mailbox);
		return 2;
	}
	if (strcmp(argv[optind], "create")) {
		fprintf(stderr, "aftercall mailbox: unknown action '%s'\n\n%s", argv[optind],
			usage_mailbox);
		return 2;
	}
	if (argc - optind < 2) {
		fprintf(stderr, "aftercall mailbox create: LOCAL or ADDRESS is required\n");
		return 2;
	}
	if (argc - optind > 2) {
		fprintf(stderr, "aftercall mailbox create: unexpected argument '%s'\n",
			argv[optind + 2]);
		return 2;
	}
	const char *local = argv[optind + 1];
	const char *key = getenv("MULTIMAIL_API_KEY");
	if (!key || !*key) {
		fprintf(stderr, "aftercall mailbox: set MULTIMAIL_API_KEY to an admin key\n");
		return 2;
	}
	char err[1024];
	char *body = mm_mailbox_body(local, display, webhook, code, err, sizeof err);
	if (!body) {
		fprintf(stderr, "aftercall mailbox: %s\n", err);
		return 2;
	}
	/* The API URL without a trailing slash. */
	char base[1024], shown[1100];
	snprintf(base, sizeof base, "%s", api && *api ? api : MM_DEFAULT_API_URL);
	for (size_t n = strlen(base); n && base[n - 1] == '/';)
		base[--n] = '\0';
	/* As messages show it: without the user information, if any. */
	const char *host = strstr(base, "://"), *at = host ? strchr(host, '@') : NULL;
	const char *slash = host ? strchr(host + 3, '/') : NULL;
	if (at && (!slash || at < slash))
		snprintf(shown, sizeof shown, "%.*s(hidden)@%s", (int)(host + 3 - base), base, at + 1);
	else
		snprintf(shown, sizeof shown, "%s", base);
	if (strncmp(base, "https://", 8) && strncmp(base, "http://", 7)) {
		fprintf(stderr, "aftercall mailbox: the API URL must be http:// or https://, not '%s'\n",
			shown);
		free(body);
		return 2;
	}
	struct mm_client c = {.api_url = base, .key = key, .timeout = 30};
	struct mm_answer a;
	int rc = 1;
	if (mm_call(&c, "POST", MM_PATH_MAILBOXES, body, &a, err, sizeof err)) {
		fprintf(stderr, "aftercall mailbox: %s\n", err);
		free(body);
		return 1;
	}
	json_t *j = a.body ? json_loads(a.body, 0, NULL) : NULL;
	if (a.status == 201) {
		const char *id = json_string_value(json_object_get(j, "id"));
		const char *addr = json_string_value(json_object_get(j, "address"));
		printf("created mailbox %s\naddress %s\n", id ? id : "?", addr ? addr : "?");
		printf("oversight %s\n",
		       json_string_value(json_object_get(j, "oversight_mode"))
			       ? json_string_value(json_object_get(j, "oversight_mode"))
			       : "gated_send");
		rc = 0;
	} else if (a.status == 202) {
		fprintf(stderr,
			"aftercall mailbox: MultiMail wants an operator's approval before it creates "
			"%s.\nThe operator receives an approval code; run the same command again "
			"with --approval-code CODE.\n",
			local);
		rc = 3;
	} else if (a.status == 409) {
		fprintf(stderr, "aftercall mailbox: the address %s is taken; choose another LOCAL\n",
			local);
		rc = 4;
	} else if (a.status == 404) {
		/* The path names no mailbox: the URL is not MultiMail's API. */
		fprintf(stderr,
			"aftercall mailbox: %s%s answered 404: is %s MultiMail's API URL? (--api-url"
			" or MULTIMAIL_API_URL, without /v1)\n",
			shown, MM_PATH_MAILBOXES, shown);
	} else {
		char why[600];
		mm_explain(a.status, a.body, a.retry_after, why, sizeof why);
		fprintf(stderr, "aftercall mailbox: %s\n", why);
	}
	json_decref(j);
	mm_answer_free(&a);
	free(body);
	return rc;
}

/* ---- replay ------------------------------------------------------------- */

/* Journal rows, copied: those of one id (one per route it came on), or a
 * page of a span of time; only `route`'s when set. */
#define REPLAY_ID_ROWS 8
#define REPLAY_PAGE 64
struct found {
	const char *route;
	size_t cap; /* at most REPLAY_PAGE */
	struct journal_row rows[REPLAY_PAGE];
	size_t n, more;
	int64_t last_seq; /* of the last row read, kept or not */
	int oom;
};

static int keep_row(void *ctx, const struct journal_row *r)
{
	struct found *f = ctx;
	f->last_seq = r->seq;
	if (f->route && strcmp(r->route, f->route))
		return 0;
	if (f->n == f->cap) {
		f->more++;
		return 0;
	}
	struct journal_row *c = &f->rows[f->n++];
	*c = *r;
	c->dedupe = strdup(r->dedupe);
	c->route = strdup(r->route);
	c->type = strdup(r->type);
	char *body = malloc(r->len + 1);
	if (body) {
		memcpy(body, r->body, r->len);
		body[r->len] = '\0';
	}
	c->body = body;
	f->oom |= !c->dedupe || !c->route || !c->type || !body;
	return 0;
}

static void found_free(struct found *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free((char *)f->rows[i].dedupe);
		free((char *)f->rows[i].route);
		free((char *)f->rows[i].type);
		free((char *)f->rows[i].body);
	}
	f->n = 0;
}

static const struct route *route_of(const struct config *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->nroutes; i++)
		if (!strcmp(cfg->routes[i].path, path))
			return &cfg->routes[i];
	return NULL;
}

/* A time as replay prints it and --since reads it: 2026-11-27T09:00:00Z. */
static void print_when(char *out, size_t len, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Replays the rows of one id (d NULL: a dry run); the number that were not
 * accepted. */
static int replay_id(struct dispatcher *d, const struct config *cfg, struct found *f,
		     const char *rid_base, unsigned long *seq)
{
	int bad = 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct journal_row *r = &f->rows[i];
		const struct route *rt = route_of(cfg, r->route);
		char when[32];
		print_when(when, sizeof when, r->received_ms);
		printf("%s  %s  %s  received %s: ", r->dedupe, r->type, r->route, when);
		if (!rt && !d && !cfg->routes_given) {
			/* The routes plugins offer are known once they run init. */
			printf("would run, if a plugin still offers route %s\n", r->route);
			continue;
		}
		if (!rt) {
			printf("not replayed: the config has no route %s\n", r->route);
			bad++;
			continue;
		}
		if (rt->is_get) {
			printf("not replayed: route %s now takes queries (GET), not events\n",
			       r->route);
			bad++;
			continue;
		}
		if (!d) {
			printf("would run\n");
			continue;
		}
		struct job j = {.route = rt, .body = r->body, .len = r->len,
				.received_ms = r->received_ms, .replay = 1};
		snprintf(j.type, sizeof j.type, "%s", r->type);
		snprintf(j.dedupe, sizeof j.dedupe, "%s", r->dedupe);
		snprintf(j.request_id, sizeof j.request_id, "%s-%lx", rid_base, (*seq)++);
		dispatcher_replay(d, &j);
		if (j.status == 200) {
			printf("accepted (request %s)\n", j.request_id);
		} else {
			printf("%d %s\n", j.status, j.result ? j.result : "");
			bad++;
		}
	}
	return bad;
}

/* WHEN of --since and --until: YYYY-MM-DDTHH:MM:SSZ, or N followed by
 * s, m, h or d, that long before now_ms. 0, or -1 when malformed. */
static int parse_when(const char *s, int64_t now_ms, int64_t *ms)
{
	static const char form[] = "dddd-dd-ddTdd:dd:ddZ";
	size_t i = 0;
	while (form[i] && (form[i] == 'd' ? s[i] >= '0' && s[i] <= '9' : s[i] == form[i]))
		i++;
	if (!form[i] && !s[i]) {
		int f[6] = {0}; /* year, month, day, hour, minute, second */
		for (size_t k = 0, n = 0; k < i; k++) {
			if (form[k] == 'd')
				f[n] = f[n] * 10 + (s[k] - '0');
			else
				n++;
		}
		struct tm tm = {.tm_year = f[0], .tm_mon = f[1], .tm_mday = f[2],
				.tm_hour = f[3], .tm_min = f[4], .tm_sec = f[5]};
		struct tm want = tm;
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		time_t t = timegm(&tm); /* normalises: 02-30 becomes 03-02 */
		if (t < 0 || tm.tm_year + 1900 != want.tm_year || tm.tm_mon + 1 != want.tm_mon ||
		    tm.tm_mday != want.tm_mday || tm.tm_hour != want.tm_hour ||
		    tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
			return -1;
		*ms = (int64_t)t * 1000;
		return 0;
	}
	char *unit;
	errno = 0;
	long long n = strtoll(s, &unit, 10);
	static const char units[] = "smhd";
	static const int64_t unit_ms[] = {1000, 60000, 3600000, 86400000};
	const char *u = *unit && !unit[1] ? strchr(units, *unit) : NULL;
	/* Digits only (no sign, no space), and at most a century ago. */
	if (errno || *s < '0' || *s > '9' || !u || n > 36525LL * 86400000 / unit_ms[u - units])
		return -1;
	*ms = now_ms - n * unit_ms[u - units];
	return 0;
}

/* Replays the rows received in [from_ms, until_ms), a page at a time; the
 * number not accepted, or -1 when there were none. */
static int replay_span(struct dispatcher *d, struct store *st, const struct config *cfg,
		       const char *route, int64_t from_ms, int64_t until_ms,
		       const char *rid_base, unsigned long *seq)
{
	int bad = 0;
	size_t seen = 0;
	for (int64_t after = 0;;) {
		struct found f = {.route = route, .cap = REPLAY_PAGE, .last_seq = after};
		int n = store_journal_range(st, from_ms, until_ms, after, REPLAY_PAGE, keep_row, &f);
		if (n < 0 || f.oom) {
			fprintf(stderr, "aftercall replay: reading the journal: %s\n",
				n < 0 ? store_errmsg(st) : "out of memory");
			found_free(&f);
			return bad + 1;
		}
		seen += f.n;
		bad += replay_id(d, cfg, &f, rid_base, seq);
		after = f.last_seq;
		found_free(&f);
		if (n < REPLAY_PAGE)
			break;
	}
	return seen ? bad : -1;
}

static int cmd_replay(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"route", required_argument, NULL, 'r'},
		{"dry-run", no_argument, NULL, 'n'},	   {"since", required_argument, NULL, 's'},
		{"until", required_argument, NULL, 'u'},   {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = DEFAULT_CONFIG, *only_route = NULL;
	int dry = 0, ch, span = 0;
	int64_t now = now_ms(), since = 0, until = now;
	while ((ch = getopt_long(argc, argv, "c:r:ns:u:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
		case 'u':
			if (parse_when(optarg, now, ch == 's' ? &since : &until)) {
				fprintf(stderr,
					"aftercall replay: --%s: expected a UTC time such as "
					"2026-11-27T09:00:00Z or a time ago such as 30m, 2h or 7d, "
					"got '%s'\n",
					ch == 's' ? "since" : "until", optarg);
				return 2;
			}
			span = 1;
			break;
		case 'c':
			file = optarg;
			break;
		case 'r':
			only_route = optarg;
			break;
		case 'n':
			dry = 1;
			break;
		case 'h':
			fputs(usage_replay, stdout);
			return 0;
		default:
			fputs(usage_replay, stderr);
			return 2;
		}
	}
	if (span && optind < argc) {
		fprintf(stderr, "aftercall replay: give event IDs or --since/--until, not both\n");
		return 2;
	}
	if (!span && optind >= argc) {
		fprintf(stderr,
			"aftercall replay: give at least one event ID, or --since or --until\n\n%s",
			usage_replay);
		return 2;
	}
	if (until <= since) {
		if (since > now)
			fprintf(stderr, "aftercall replay: --since is in the future\n");
		else
			fprintf(stderr, "aftercall replay: --until must come after --since\n");
		return 2;
	}
	struct strbuf errs;
	sb_init(&errs);
	struct loaded l;
	if (load(file, &l, &errs)) {
		fputs(errs.data ? errs.data : "", stderr);
		sb_free(&errs);
		loaded_free(&l);
		return 1;
	}
	sb_free(&errs);
	log_set_level(l.cfg->log_level);
	char err[1024];
	/* STORE_SERVE: with SQLite, not while serve holds the store. A dry run
	 * only reads: no lock, and no plugin's init runs. */
	struct store *st = store_open(l.cfg->store, l.cfg->store_sync_full,
				      STORE_EXISTING | (dry ? 0 : STORE_SERVE), err, sizeof err);
	if (!st) {
		fprintf(stderr, "aftercall replay: %s\n", err);
		loaded_free(&l);
		return 1;
	}
	/* The dispatcher owns the plugins from here on. */
	struct dispatcher *d =
		dry ? NULL
		    : dispatcher_new(l.cfg, st, &l.templates, l.plugins, l.nplugins, err, sizeof err);
	if (!dry && !d) {
		fprintf(stderr, "aftercall replay: %s\n", err);
		free(l.plugins);
		l.plugins = NULL;
		loaded_free(&l);
		store_close(st);
		return 1;
	}
	if (d && add_plugin_routes(l.cfg, l.plugins, l.nplugins, &errs)) {
		fputs(errs.data ? errs.data : "", stderr);
		sb_free(&errs);
		dispatcher_free(d);
		free(l.plugins);
		l.plugins = NULL;
		loaded_free(&l);
		store_close(st);
		return 1;
	}
	char rid_base[24];
	snprintf(rid_base, sizeof rid_base, "replay-%08lx", (unsigned long)(uint32_t)random_bits());
	unsigned long seq = 0;
	int bad = 0;
	if (span) {
		bad = replay_span(d, st, l.cfg, only_route, since, until, rid_base, &seq);
		if (bad < 0) {
			char a[32], b[32];
			print_when(a, sizeof a, since);
			print_when(b, sizeof b, until);
			printf("no events in the journal received from %s to %s%s%s\n", a, b,
			       only_route ? " on route " : "", only_route ? only_route : "");
		}
	}
	for (int i = optind; i < argc; i++) {
		struct found f = {.route = only_route, .cap = REPLAY_ID_ROWS};
		int n = store_journal_find(st, argv[i], keep_row, &f);
		if (n < 0) {
			fprintf(stderr, "aftercall replay: %s: %s\n", argv[i], store_errmsg(st));
			bad++;
		} else if (f.oom) {
			fprintf(stderr, "aftercall replay: %s: out of memory\n", argv[i]);
			bad++;
		} else if (f.n == 0) {
			if (only_route)
				printf("%s: not in the journal for route %s\n", argv[i], only_route);
			else
				printf("%s: not in the journal\n", argv[i]);
			bad++;
		} else {
			bad += replay_id(d, l.cfg, &f, rid_base, &seq);
			if (f.more)
				printf("%s: %zu more rows not replayed (at most %zu per id)\n", argv[i],
				       f.more, f.n);
		}
		found_free(&f);
	}
	if (d) {
		dispatcher_free(d);
		free(l.plugins);
		l.plugins = NULL;
	}
	loaded_free(&l);
	store_close(st);
	return bad ? 1 : 0;
}

/* ---- audit -------------------------------------------------------------- */

static int print_audit(void *ctx, int64_t seq, const struct audit_rec *r)
{
	(void)ctx;
	time_t t = (time_t)(r->ts_ms / 1000);
	struct tm tm;
	char when[32];
	gmtime_r(&t, &tm);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
	int rid = r->request_id && *r->request_id;
	printf("%6lld  %s.%03dZ  %-10s %-22s %s%s%s%s%s\n", (long long)seq, when,
	       (int)(r->ts_ms % 1000), r->actor, r->kind, r->subject ? r->subject : "",
	       rid ? "  req=" : "", rid ? r->request_id : "", r->detail ? "  " : "",
	       r->detail ? r->detail : "");
	return 0;
}

/* --head N:HASH, as --verify prints the head. 0, or -1 when malformed. */
static int parse_head(const char *arg, struct audit_walk *w)
{
	char *end;
	errno = 0;
	long long seq = strtoll(arg, &end, 10);
	if (errno || seq < 1 || end == arg || *end != ':' || strlen(end + 1) != 2 * SHA256_LEN ||
	    hex_decode(end + 1, 2 * SHA256_LEN, w->head) != SHA256_LEN)
		return -1;
	w->head_seq = seq;
	return 0;
}

static int cmd_audit(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"room", required_argument, NULL, 'r'},
		{"contact", required_argument, NULL, 'e'}, {"verify", no_argument, NULL, 'v'},
		{"head", required_argument, NULL, 'H'},	   {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = DEFAULT_CONFIG, *room = NULL, *contact = NULL;
	int verify = 0, ch;
	struct audit_walk walk;
	audit_walk_init(&walk);
	while ((ch = getopt_long(argc, argv, "c:r:e:vH:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'r':
			room = optarg;
			break;
		case 'e':
			contact = optarg;
			break;
		case 'v':
			verify = 1;
			break;
		case 'H':
			if (parse_head(optarg, &walk)) {
				fprintf(stderr,
					"aftercall audit: --head wants N:HASH as --verify prints it"
					" (N a record number, HASH 64 hex digits), not '%s'\n",
					optarg);
				return 2;
			}
			verify = 1;
			break;
		case 'h':
			fputs(usage_audit, stdout);
			return 0;
		default:
			fputs(usage_audit, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "aftercall audit: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!room && !contact && !verify) {
		fprintf(stderr, "aftercall audit: give --room, --contact or --verify\n\n%s",
			usage_audit);
		return 2;
	}
	if (room && contact) {
		fprintf(stderr, "aftercall audit: give --room or --contact, not both\n");
		return 2;
	}
	struct store *st = open_store_of(file, "audit");
	if (!st)
		return 1;
	char err[1024];
	int rc = 0;
	if (verify) {
		long long n = 0;
		if (store_audit_verify(st, &walk, err, sizeof err)) {
			fprintf(stderr, "aftercall audit: the chain is broken at %s\n", err);
			rc = 1;
		} else if (walk.head_seq && !walk.head_seen) {
			char end[96] = "has no records (all removed)";
			if (walk.expect > 1)
				snprintf(end, sizeof end, "ends at record %lld (records removed from its end)",
					 (long long)walk.expect - 1);
			fprintf(stderr,
				"aftercall audit: the chain is broken at record %lld: not there, the"
				" chain %s\n",
				(long long)walk.head_seq, end);
			rc = 1;
		} else if ((n = walk.expect - 1) == 0) {
			printf("audit chain OK: 0 records\n");
		} else {
			char hex[2 * SHA256_LEN + 1];
			hex_encode(walk.prev, SHA256_LEN, hex);
			printf("audit chain OK: %lld records; head %lld:%s\n", n, n, hex);
		}
	}
	if (room || contact) {
		int n = store_audit_list(st, room, contact, print_audit, NULL);
		if (n < 0) {
			fprintf(stderr, "aftercall audit: %s\n", store_errmsg(st));
			rc = 1;
		} else if (n == 0) {
			fprintf(stderr, "aftercall audit: no records for %s\n", room ? room : contact);
			rc = 1;
		}
	}
	store_close(st);
	return rc;
}

/* ---- migrate ------------------------------------------------------------ */

static void say_step(void *ctx, int v)
{
	printf("schema %d: %s\n", v, store_migration_what(v));
}

static int cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"to", required_argument, NULL, 't'},
		{"status", no_argument, NULL, 's'},	   {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = DEFAULT_CONFIG;
	int target = STORE_SCHEMA_VERSION, status = 0, ch;
	char *end;
	while ((ch = getopt_long(argc, argv, "c:t:sh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 't':
			errno = 0;
			long t = strtol(optarg, &end, 10);
			target = errno || t < 1 || t > STORE_SCHEMA_VERSION ? 0 : (int)t;
			if (*end || end == optarg || target < 1) {
				fprintf(stderr, "aftercall migrate: --to takes 1 to %d\n",
					STORE_SCHEMA_VERSION);
				return 2;
			}
			break;
		case 's':
			status = 1;
			break;
		case 'h':
			fputs(usage_migrate, stdout);
			return 0;
		default:
			fputs(usage_migrate, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "aftercall: unexpected argument '%s'\n\n%s", argv[optind],
			usage_migrate);
		return 2;
	}
	struct strbuf errs;
	sb_init(&errs);
	struct config *cfg = config_load(file, &errs);
	if (!cfg) {
		fputs(errs.data ? errs.data : "", stderr);
		sb_free(&errs);
		return 1;
	}
	sb_free(&errs);
	char err[1024];
	/* STORE_SERVE: a SQLite store in use by serve is refused. */
	struct store *st = store_open(cfg->store, cfg->store_sync_full,
				      STORE_MIGRATE | (status ? STORE_EXISTING : STORE_SERVE), err,
				      sizeof err);
	if (!st) {
		fprintf(stderr, "aftercall migrate: %s\n", err);
		config_free(cfg);
		return 1;
	}
	int from = store_schema_version(st), rc = 0;
	if (status) {
		printf("store schema %d; this aftercall needs %d\n", from, STORE_SCHEMA_VERSION);
		rc = from == STORE_SCHEMA_VERSION ? 0 : 1;
	} else if (from > target) {
		fprintf(stderr, "aftercall migrate: the store is at schema %d, past %d; steps are "
				"never undone\n", from, target);
		rc = 1;
	} else if (from == target) {
		printf("store schema %d: nothing to do\n", from);
	} else if (store_migrate(st, target, say_step, NULL, err, sizeof err) < 0) {
		fprintf(stderr, "aftercall migrate: %s (the steps before it are kept)\n", err);
		rc = 1;
	} else {
		printf("store schema %d → %d\n", from, target);
	}
	store_close(st);
	config_free(cfg);
	return rc;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			puts("Usage: aftercall version\n\nPrints aftercall's version and the plugin ABI "
			     "it runs.");
			return 0;
		}
		if (argc > 2) {
			fprintf(stderr, "aftercall version: unexpected argument '%s'\n", argv[2]);
			return 2;
		}
		printf("aftercall %s (plugin ABI %u.%u)\n", PACKAGE_VERSION, AC_PLUGIN_ABI_MAJOR,
		       AC_PLUGIN_ABI_MINOR);
		return 0;
	}
	argv[1] = argv[0];
	if (!strcmp(cmd, "serve"))
		return cmd_serve(argc - 1, argv + 1);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(cmd, "sign"))
		return cmd_sign(argc - 1, argv + 1);
	if (!strcmp(cmd, "render"))
		return cmd_render(argc - 1, argv + 1);
	if (!strcmp(cmd, "outbox"))
		return cmd_outbox(argc - 1, argv + 1);
	if (!strcmp(cmd, "mailbox"))
		return cmd_mailbox(argc - 1, argv + 1);
	if (!strcmp(cmd, "audit"))
		return cmd_audit(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate"))
		return cmd_migrate(argc - 1, argv + 1);
	if (!strcmp(cmd, "replay"))
		return cmd_replay(argc - 1, argv + 1);
	fprintf(stderr, "aftercall: unknown command '%s'\n\n%s", cmd, usage_main);
	return 2;
}
