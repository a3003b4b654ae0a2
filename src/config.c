/*
 * The config file.
 *
 * libyaml loads the file into a node graph; the walkers below read it key by
 * key, expanding ${VAR} references in every scalar, and record each error
 * with the line it stands on and the dotted path of its key. Nothing stops at
 * the first error: `aftercall check` shows them all at once.
 */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <yaml.h>

#include "config.h"
#include "log.h"
#include "store.h"

struct walk {
	yaml_document_t doc;
	const char *file;
	struct strbuf *errs;
	int nerr;
	int literal_secrets; /* a secret written in the file, not a ${VAR} */
	size_t json_values;  /* made by to_json: aliases can multiply them */
	int plain;	     /* a plugin's routes: no ${VAR} to expand */
};

/* Plugin configs are small; a few hundred bytes of nested YAML aliases can
 * ask for billions of values. */
#define MAX_JSON_VALUES 100000

/* Notes a secret given in clear in the file (for check's warning). */
static void note_secret(struct walk *w, yaml_node_t *n)
{
	const char *raw = n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
	if (raw && *raw && !strstr(raw, "${"))
		w->literal_secrets = 1;
}

/* Plugin config keys that hold secrets, by their names. */
static int secret_name(const char *key)
{
	static const char *const words[] = {"secret", "token", "password", "api_key", NULL};
	for (int i = 0; words[i]; i++)
		if (strstr(key, words[i]))
			return 1;
	return 0;
}

static void err_at(struct walk *w, yaml_node_t *n, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void err_at(struct walk *w, yaml_node_t *n, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sb_printf(w->errs, "%s:%lu: %s: %s\n", w->file, n ? (unsigned long)n->start_mark.line + 1 : 1UL,
		  key, msg);
	w->nerr++;
}

static yaml_node_t *node(struct walk *w, int id)
{
	return yaml_document_get_node(&w->doc, id);
}

static const char *scalar_raw(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Expands ${VAR} from the environment. Returns a malloc'd string, or NULL
 * after recording the error. */
static char *expand(struct walk *w, yaml_node_t *n, const char *key, const char *s)
{
	if (w->plain)
		return strdup(s);
	struct strbuf b;
	sb_init(&b);
	while (*s) {
		const char *d = strstr(s, "${");
		if (!d) {
			sb_puts(&b, s);
			break;
		}
		sb_add(&b, s, (size_t)(d - s));
		const char *end = strchr(d + 2, '}');
		if (!end) {
			err_at(w, n, key, "unterminated ${ in value");
			sb_free(&b);
			return NULL;
		}
		char name[256];
		size_t len = (size_t)(end - d - 2);
		if (len == 0 || len >= sizeof name) {
			err_at(w, n, key, "bad environment variable reference");
			sb_free(&b);
			return NULL;
		}
		memcpy(name, d + 2, len);
		name[len] = '\0';
		const char *v = getenv(name);
		if (!v) {
			err_at(w, n, key, "environment variable %s is not set", name);
			sb_free(&b);
			return NULL;
		}
		sb_puts(&b, v);
		s = end + 1;
	}
	return sb_steal(&b);
}

/* A required or optional string at n. */
static char *get_str(struct walk *w, yaml_node_t *n, const char *key)
{
	const char *raw = scalar_raw(n);
	if (!raw) {
		err_at(w, n, key, "expected a string");
		return NULL;
	}
	return expand(w, n, key, raw);
}

static int get_uint(struct walk *w, yaml_node_t *n, const char *key, unsigned min, unsigned max,
		    unsigned *out)
{
	char *s = get_str(w, n, key);
	if (!s)
		return -1;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	int ok = *s >= '0' && *s <= '9' && !*end && !errno && v >= min && v <= max;
	if (!ok)
		err_at(w, n, key, "expected a whole number from %u to %u, got \"%s\"", min, max, s);
	else
		*out = (unsigned)v;
	free(s);
	return ok ? 0 : -1;
}

int config_parse_size(const char *s, size_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	while (*end == ' ')
		end++;
	unsigned long long mul = 1;
	if (!*end || !strcmp(end, "B"))
		mul = 1;
	else if (!strcmp(end, "K") || !strcmp(end, "KB") || !strcmp(end, "KiB") ||
		 !strcmp(end, "k"))
		mul = 1024;
	else if (!strcmp(end, "M") || !strcmp(end, "MB") || !strcmp(end, "MiB"))
		mul = 1024 * 1024;
	else if (!strcmp(end, "G") || !strcmp(end, "GB") || !strcmp(end, "GiB"))
		mul = 1024ULL * 1024 * 1024;
	else
		return -1;
	if (v > SIZE_MAX / mul)
		return -1;
	*out = (size_t)(v * mul);
	return 0;
}

/* Iterates the pairs of a mapping. */
#define FOR_PAIRS(w, map, p)                                                                       \
	for (yaml_node_pair_t *p = (map)->data.mapping.pairs.start;                                \
	     p < (map)->data.mapping.pairs.top; p++)

static int check_keys(struct walk *w, yaml_node_t *map, const char *where,
		      const char *const *allowed)
{
	int bad = 0;
	FOR_PAIRS(w, map, p)
	{
		yaml_node_t *k = node(w, p->key);
		const char *name = scalar_raw(k);
		int found = 0;
		for (size_t i = 0; name && allowed[i]; i++)
			found |= !strcmp(name, allowed[i]);
		if (!found) {
			char key[300];
			snprintf(key, sizeof key, "%s%s%s", where, *where ? "." : "",
				 name ? name : "?");
			err_at(w, k, key, "unknown key");
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

static yaml_node_t *map_get(struct walk *w, yaml_node_t *map, const char *name)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	FOR_PAIRS(w, map, p)
	{
		const char *k = scalar_raw(node(w, p->key));
		if (k && !strcmp(k, name))
			return node(w, p->value);
	}
	return NULL;
}

static int is_map(struct walk *w, yaml_node_t *n, const char *key)
{
	if (n && n->type == YAML_MAPPING_NODE)
		return 1;
	err_at(w, n, key, "expected a mapping");
	return 0;
}

static int is_seq(struct walk *w, yaml_node_t *n, const char *key)
{
	if (n && n->type == YAML_SEQUENCE_NODE)
		return 1;
	err_at(w, n, key, "expected a list");
	return 0;
}

/* ---- plugin config: YAML to JSON ------------------------------------- */

/* Plain scalars take the YAML core schema's types; quoted ones are strings. */
static json_t *scalar_json(const char *s, yaml_scalar_style_t style)
{
	if (style != YAML_PLAIN_SCALAR_STYLE)
		return json_string(s);
	if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	    !strcmp(s, "NULL"))
		return json_null();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_false();
	char *end;
	errno = 0;
	long long i = strtoll(s, &end, 10);
	if (!*end && !errno && (*s == '-' || *s == '+' || (*s >= '0' && *s <= '9')))
		return json_integer(i);
	double d = strtod(s, &end);
	if (!*end && (*s == '-' || *s == '+' || *s == '.' || (*s >= '0' && *s <= '9')) &&
	    strcspn(s, "xXnN") == strlen(s))
		return json_real(d);
	return json_string(s);
}

static json_t *to_json(struct walk *w, yaml_node_t *n, const char *key, int depth)
{
	if (!n)
		return json_null();
	if (depth > 64) {
		err_at(w, n, key, "nested too deeply");
		return NULL;
	}
	if (++w->json_values > MAX_JSON_VALUES) {
		err_at(w, n, key, "more than %d values (aliases expanding?)", MAX_JSON_VALUES);
		return NULL;
	}
	char sub[512];
	switch (n->type) {
	case YAML_SCALAR_NODE: {
		char *s = expand(w, n, key, scalar_raw(n));
		if (!s)
			return NULL;
		json_t *j = scalar_json(s, n->data.scalar.style);
		free(s);
		return j;
	}
	case YAML_SEQUENCE_NODE: {
		json_t *a = json_array();
		int i = 0;
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++, i++) {
			snprintf(sub, sizeof sub, "%s[%d]", key, i);
			json_t *v = to_json(w, node(w, *it), sub, depth + 1);
			if (!v) {
				json_decref(a);
				return NULL;
			}
			json_array_append_new(a, v);
		}
		return a;
	}
	case YAML_MAPPING_NODE: {
		json_t *o = json_object();
		FOR_PAIRS(w, n, p)
		{
			const char *k = scalar_raw(node(w, p->key));
			if (!k) {
				err_at(w, node(w, p->key), key, "keys must be strings");
				json_decref(o);
				return NULL;
			}
			snprintf(sub, sizeof sub, "%s.%s", key, k);
			if (secret_name(k))
				note_secret(w, node(w, p->value));
			json_t *v = to_json(w, node(w, p->value), sub, depth + 1);
			if (!v) {
				json_decref(o);
				return NULL;
			}
			json_object_set_new(o, k, v);
		}
		return o;
	}
	default:
		err_at(w, n, key, "unsupported YAML node");
		return NULL;
	}
}

/* ---- sections ---------------------------------------------------------- */

static void parse_listen(struct walk *w, struct config *c, yaml_node_t *n)
{
	char *s = get_str(w, n, "listen");
	if (!s)
		return;
	char *colon = strrchr(s, ':');
	char *host = s;
	if (!colon) {
		err_at(w, n, "listen", "expected HOST:PORT, got \"%s\"", s);
		free(s);
		return;
	}
	*colon = '\0';
	if (*host == '[') { /* [::1]:8080 */
		size_t l = strlen(host);
		if (l < 2 || host[l - 1] != ']') {
			err_at(w, n, "listen", "bad IPv6 address");
			free(s);
			return;
		}
		host[l - 1] = '\0';
		host++;
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 0 || port > 65535) {
		err_at(w, n, "listen", "bad port \"%s\"", colon + 1);
		free(s);
		return;
	}
	c->listen_port = (unsigned)port;
	c->listen_host = *host && strcmp(host, "*") ? strdup(host) : NULL;
	free(s);
}

static void parse_store(struct walk *w, struct config *c, yaml_node_t *n)
{
	char *s = NULL;
	yaml_node_t *at = n;
	if (n && n->type == YAML_MAPPING_NODE) {
		static const char *const keys[] = {"url", "sync", NULL};
		check_keys(w, n, "store", keys);
		at = map_get(w, n, "url");
		if (!at) {
			err_at(w, n, "store.url", "required");
			return;
		}
		yaml_node_t *sync = map_get(w, n, "sync");
		if (sync) {
			char *v = get_str(w, sync, "store.sync");
			if (v && !strcmp(v, "normal"))
				c->store_sync_full = 0;
			else if (v && strcmp(v, "full"))
				err_at(w, sync, "store.sync", "expected full or normal, got \"%s\"", v);
			free(v);
		}
	}
	s = get_str(w, at, n == at ? "store" : "store.url");
	if (!s)
		return;
	if ((!strncmp(s, "sqlite:", 7) && s[7]) || !strncmp(s, "postgres://", 11) ||
	    !strncmp(s, "postgresql://", 13)) {
		/* A password written into the URL is a secret in the file. */
		if (strcmp(store_display(s), s))
			note_secret(w, at);
		c->store = s;
		return;
	}
	err_at(w, at, "store", "expected sqlite:PATH or postgres://[USER@]HOST[:PORT]/DB");
	free(s);
}

static void parse_livekit(struct walk *w, struct config *c, yaml_node_t *n)
{
	if (!n) {
		err_at(w, NULL, "livekit.keys", "required (a map of API key to secret)");
		return;
	}
	if (!is_map(w, n, "livekit"))
		return;
	static const char *const keys[] = {"keys", "leeway", NULL};
	check_keys(w, n, "livekit", keys);
	yaml_node_t *lw = map_get(w, n, "leeway");
	if (lw) {
		unsigned v;
		if (!get_uint(w, lw, "livekit.leeway", 0, 3600, &v))
			c->leeway = (int)v;
	}
	yaml_node_t *k = map_get(w, n, "keys");
	if (!k) {
		err_at(w, n, "livekit.keys", "required (a map of API key to secret)");
		return;
	}
	if (!is_map(w, k, "livekit.keys"))
		return;
	size_t cap = (size_t)(k->data.mapping.pairs.top - k->data.mapping.pairs.start);
	c->keys = calloc(cap ? cap : 1, sizeof *c->keys);
	FOR_PAIRS(w, k, p)
	{
		yaml_node_t *kn = node(w, p->key);
		char key[300];
		const char *raw = scalar_raw(kn);
		snprintf(key, sizeof key, "livekit.keys.%s", raw ? raw : "?");
		char *name = get_str(w, kn, key);
		char *secret = get_str(w, node(w, p->value), key);
		note_secret(w, node(w, p->value));
		if (name && secret && !*secret)
			err_at(w, node(w, p->value), key, "empty secret");
		else if (name && secret && *name) {
			c->keys[c->nkeys].key = name;
			c->keys[c->nkeys++].secret = secret;
			continue;
		}
		free(name);
		free(secret);
	}
	if (c->nkeys == 0 && cap == 0)
		err_at(w, k, "livekit.keys", "needs at least one key");
}

static void parse_limits(struct walk *w, struct config *c, yaml_node_t *n)
{
	if (!is_map(w, n, "limits"))
		return;
	static const char *const keys[] = {"body_size",	  "read_timeout", "request_timeout",
					   "connections", "threads",	  NULL};
	check_keys(w, n, "limits", keys);
	yaml_node_t *v;
	if ((v = map_get(w, n, "body_size"))) {
		char *s = get_str(w, v, "limits.body_size");
		size_t sz;
		if (s && (config_parse_size(s, &sz) || sz == 0 || sz > 1024 * 1024 * 1024))
			err_at(w, v, "limits.body_size", "expected a size such as 1MiB, got \"%s\"", s);
		else if (s)
			c->body_limit = sz;
		free(s);
	}
	if ((v = map_get(w, n, "read_timeout")))
		get_uint(w, v, "limits.read_timeout", 1, 3600, &c->read_timeout);
	/* An idle keep-alive connection may wait read_timeout before its next
	 * request, whose time counts from the previous answer: the default is
	 * three times read_timeout, and a value given must be more. */
	c->request_timeout = 3 * c->read_timeout;
	if ((v = map_get(w, n, "request_timeout")) &&
	    get_uint(w, v, "limits.request_timeout", 2, 10800, &c->request_timeout) == 0 &&
	    c->request_timeout <= c->read_timeout)
		err_at(w, v, "limits.request_timeout",
		       "must be more than limits.read_timeout (%u), got %u", c->read_timeout,
		       c->request_timeout);
	if ((v = map_get(w, n, "connections")))
		get_uint(w, v, "limits.connections", 1, 100000, &c->max_connections);
	if ((v = map_get(w, n, "threads")))
		get_uint(w, v, "limits.threads", 1, 256, &c->threads);
}

static void parse_plugins(struct walk *w, struct config *c, yaml_node_t *n)
{
	if (!n) {
		err_at(w, NULL, "plugins", "required (a list of plugins)");
		return;
	}
	if (!is_seq(w, n, "plugins"))
		return;
	size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	c->plugins = calloc(cap ? cap : 1, sizeof *c->plugins);
	int i = 0;
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *item = node(w, *it);
		char key[64], sub[96];
		snprintf(key, sizeof key, "plugins[%d]", i);
		if (!is_map(w, item, key))
			continue;
		static const char *const keys[] = {"name", "path", "config", NULL};
		check_keys(w, item, key, keys);
		struct plugin_conf *p = &c->plugins[c->nplugins];
		p->line = (int)item->start_mark.line + 1;
		yaml_node_t *v = map_get(w, item, "name");
		snprintf(sub, sizeof sub, "%s.name", key);
		if (!v) {
			err_at(w, item, sub, "required");
			continue;
		}
		p->name = get_str(w, v, sub);
		if (!p->name)
			continue;
		for (size_t j = 0; j < c->nplugins; j++)
			if (!strcmp(c->plugins[j].name, p->name))
				err_at(w, v, sub, "plugin \"%s\" is listed twice", p->name);
		if (!*p->name || strchr(p->name, '/'))
			err_at(w, v, sub, "bad plugin name \"%s\"", p->name);
		if ((v = map_get(w, item, "path"))) {
			snprintf(sub, sizeof sub, "%s.path", key);
			p->path = get_str(w, v, sub);
		}
		json_t *cfg = NULL;
		if ((v = map_get(w, item, "config"))) {
			snprintf(sub, sizeof sub, "%s.config", key);
			cfg = to_json(w, v, sub, 0);
			if (cfg && !json_is_object(cfg) && !json_is_null(cfg)) {
				err_at(w, v, sub, "expected a mapping");
				json_decref(cfg);
				cfg = NULL;
			}
		}
		if (!cfg || json_is_null(cfg)) {
			json_decref(cfg);
			cfg = json_object();
		}
		p->config_json = json_dumps(cfg, JSON_COMPACT);
		json_decref(cfg);
		c->nplugins++;
	}
}

static int plugin_index(struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nplugins; i++)
		if (!strcmp(c->plugins[i].name, name))
			return (int)i;
	return -1;
}

/* The chain of every plugin from index `first` on. */
static void chain_from(struct config *c, struct route *r, size_t first)
{
	r->chain = calloc(c->nplugins ? c->nplugins : 1, sizeof *r->chain);
	for (size_t i = first; r->chain && i < c->nplugins; i++)
		r->chain[r->nchain++] = i;
}

static void parse_verifier(struct walk *w, struct config *c, struct verifier *vf, yaml_node_t *n,
			   const char *key)
{
	char sub[160];
	const char *raw = scalar_raw(n);
	if (raw) {
		if (strcmp(raw, "livekit"))
			err_at(w, n, key, "expected livekit, or a mapping with hmac or bearer");
		vf->kind = VERIFY_LIVEKIT;
		return;
	}
	if (!is_map(w, n, key))
		return;
	static const char *const keys[] = {"hmac", "bearer", NULL};
	if (check_keys(w, n, key, keys))
		return;
	yaml_node_t *h = map_get(w, n, "hmac"), *b = map_get(w, n, "bearer");
	if ((h != NULL) == (b != NULL)) {
		err_at(w, n, key, "give exactly one of hmac or bearer");
		return;
	}
	if (b) {
		snprintf(sub, sizeof sub, "%s.bearer", key);
		vf->kind = VERIFY_BEARER;
		vf->secret = get_str(w, b, sub);
		note_secret(w, b);
		if (vf->secret && strlen(vf->secret) < 16)
			err_at(w, b, sub, "token too short (at least 16 characters)");
		return;
	}
	snprintf(sub, sizeof sub, "%s.hmac", key);
	if (!is_map(w, h, sub))
		return;
	static const char *const hkeys[] = {"header", "prefix", "encoding", "secret", NULL};
	check_keys(w, h, sub, hkeys);
	vf->kind = VERIFY_HMAC;
	yaml_node_t *v;
	snprintf(sub, sizeof sub, "%s.hmac.header", key);
	if ((v = map_get(w, h, "header")))
		vf->header = get_str(w, v, sub);
	else
		err_at(w, h, sub, "required");
	snprintf(sub, sizeof sub, "%s.hmac.prefix", key);
	vf->prefix = (v = map_get(w, h, "prefix")) ? get_str(w, v, sub) : strdup("");
	snprintf(sub, sizeof sub, "%s.hmac.encoding", key);
	if ((v = map_get(w, h, "encoding"))) {
		char *e = get_str(w, v, sub);
		if (e && !strcmp(e, "base64"))
			vf->encoding = ENC_BASE64;
		else if (e && strcmp(e, "hex"))
			err_at(w, v, sub, "expected hex or base64, got \"%s\"", e);
		free(e);
	}
	snprintf(sub, sizeof sub, "%s.hmac.secret", key);
	if ((v = map_get(w, h, "secret"))) {
		vf->secret = get_str(w, v, sub);
		note_secret(w, v);
		if (vf->secret && !*vf->secret)
			err_at(w, v, sub, "empty secret");
	} else {
		err_at(w, h, sub, "required");
	}
}

/* One route of the sequence at `item`, named `key` in errors. Without a
 * plugins key its chain is every plugin from index `first` on. */
static void parse_route(struct walk *w, struct config *c, yaml_node_t *item, const char *key,
			size_t first)
{
	char sub[128];
	if (!is_map(w, item, key))
		return;
	static const char *const keys[] = {"path", "method", "verify", "event_type", "plugins", NULL};
	static const char *const plugin_keys[] = {"path", "method", "verify", "event_type", NULL};
	check_keys(w, item, key, w->plain ? plugin_keys : keys);
	struct route *r = &c->routes[c->nroutes++];
	yaml_node_t *v = map_get(w, item, "path");
	snprintf(sub, sizeof sub, "%s.path", key);
	if (!v)
		err_at(w, item, sub, "required");
	else if ((r->path = get_str(w, v, sub))) {
		const char *open = strchr(r->path, '{'), *close = strchr(r->path, '}');
		if (r->path[0] != '/' || strstr(r->path, "/..") || strchr(r->path, '?'))
			err_at(w, v, sub, "expected an absolute path, got \"%s\"", r->path);
		else if ((open || close) &&
			 (!open || !close || close < open || strchr(open + 1, '{') ||
			  strchr(close + 1, '}') || open[-1] != '/' || (close[1] && close[1] != '/')))
			err_at(w, v, sub, "at most one {name} segment, between slashes");
		else if (!strcmp(r->path, "/healthz") || !strcmp(r->path, "/metrics"))
			err_at(w, v, sub, "%s is reserved", r->path);
		for (size_t j = 0; j + 1 < c->nroutes; j++)
			if (c->routes[j].path && !strcmp(c->routes[j].path, r->path))
				err_at(w, v, sub, "route %s is defined twice", r->path);
	}
	snprintf(sub, sizeof sub, "%s.verify", key);
	if (!(v = map_get(w, item, "verify"))) {
		err_at(w, item, sub, "required (livekit, hmac or bearer, or a list of them)");
	} else if (v->type == YAML_SEQUENCE_NODE) {
		size_t nv = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
		r->verify = calloc(nv ? nv : 1, sizeof *r->verify);
		if (!nv)
			err_at(w, v, sub, "give at least one verifier");
		for (yaml_node_item_t *vi = v->data.sequence.items.start;
		     vi < v->data.sequence.items.top; vi++) {
			char vsub[160];
			snprintf(vsub, sizeof vsub, "%s[%zu]", sub, r->nverify);
			parse_verifier(w, c, &r->verify[r->nverify++], node(w, *vi), vsub);
		}
	} else {
		r->verify = calloc(1, sizeof *r->verify);
		r->nverify = 1;
		parse_verifier(w, c, &r->verify[0], v, sub);
	}
	if ((v = map_get(w, item, "method"))) {
		snprintf(sub, sizeof sub, "%s.method", key);
		char *m = get_str(w, v, sub);
		if (m && !strcmp(m, "GET"))
			r->is_get = 1;
		else if (m && strcmp(m, "POST"))
			err_at(w, v, sub, "expected POST or GET, got \"%s\"", m);
		free(m);
	}
	if ((v = map_get(w, item, "event_type"))) {
		snprintf(sub, sizeof sub, "%s.event_type", key);
		r->event_type = get_str(w, v, sub);
		if (r->event_type && (!*r->event_type || strlen(r->event_type) > 100))
			err_at(w, v, sub, "expected a short event type name");
	}
	snprintf(sub, sizeof sub, "%s.plugins", key);
	if (!(v = map_get(w, item, "plugins"))) {
		chain_from(c, r, first);
		return;
	}
	if (!is_seq(w, v, sub))
		return;
	size_t n_items = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	r->chain = calloc(n_items ? n_items : 1, sizeof *r->chain);
	for (yaml_node_item_t *pi = v->data.sequence.items.start; pi < v->data.sequence.items.top;
	     pi++) {
		char *name = get_str(w, node(w, *pi), sub);
		if (!name)
			continue;
		int idx = plugin_index(c, name);
		if (idx < 0)
			err_at(w, node(w, *pi), sub, "no plugin named \"%s\" in plugins", name);
		else
			r->chain[r->nchain++] = (size_t)idx;
		free(name);
	}
}

/* Appends the routes of the sequence n; `first` as for parse_route. */
static void parse_route_seq(struct walk *w, struct config *c, yaml_node_t *n, const char *name,
			    size_t first)
{
	if (!is_seq(w, n, name))
		return;
	size_t add = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	struct route *more = realloc(c->routes, (c->nroutes + add + 1) * sizeof *more);
	if (!more) {
		err_at(w, n, name, "out of memory");
		return;
	}
	c->routes = more;
	memset(&c->routes[c->nroutes], 0, (add + 1) * sizeof *more);
	int i = 0;
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++, i++) {
		char key[64];
		snprintf(key, sizeof key, "%.40s[%d]", name, i);
		parse_route(w, c, node(w, *it), key, first);
	}
}

static void parse_routes(struct walk *w, struct config *c, yaml_node_t *n)
{
	if (n) {
		c->routes_given = 1;
		parse_route_seq(w, c, n, "routes", 0);
		return;
	}
	c->routes = calloc(1, sizeof *c->routes);
	c->routes[0].path = strdup("/webhooks/livekit");
	c->routes[0].verify = calloc(1, sizeof *c->routes[0].verify);
	c->routes[0].nverify = 1;
	c->routes[0].verify[0].kind = VERIFY_LIVEKIT;
	chain_from(c, &c->routes[0], 0);
	c->nroutes = 1;
}

static void parse_outbox(struct walk *w, struct config *c, yaml_node_t *n)
{
	if (!is_map(w, n, "outbox"))
		return;
	static const char *const keys[] = {"concurrency",   "connect_timeout", "timeout",
					   "retry_base_ms", "retry_cap_ms",    NULL};
	check_keys(w, n, "outbox", keys);
	yaml_node_t *v;
	if ((v = map_get(w, n, "concurrency")))
		get_uint(w, v, "outbox.concurrency", 1, 1024, &c->outbox_concurrency);
	if ((v = map_get(w, n, "connect_timeout")))
		get_uint(w, v, "outbox.connect_timeout", 1, 600, &c->outbox_connect_timeout);
	if ((v = map_get(w, n, "timeout")))
		get_uint(w, v, "outbox.timeout", 1, 3600, &c->outbox_timeout);
	if ((v = map_get(w, n, "retry_base_ms")))
		get_uint(w, v, "outbox.retry_base_ms", 1, 3600000, &c->outbox_retry_base_ms);
	if ((v = map_get(w, n, "retry_cap_ms")))
		get_uint(w, v, "outbox.retry_cap_ms", 1, 86400000, &c->outbox_retry_cap_ms);
}

static void parse_log(struct walk *w, struct config *c, yaml_node_t *n)
{
	if (!is_map(w, n, "log"))
		return;
	static const char *const keys[] = {"level", NULL};
	check_keys(w, n, "log", keys);
	yaml_node_t *v = map_get(w, n, "level");
	if (!v)
		return;
	char *s = get_str(w, v, "log.level");
	if (s && log_level_parse(s, &c->log_level))
		err_at(w, v, "log.level", "expected debug, info, warn or error, got \"%s\"", s);
	free(s);
}

static void parse_root(struct walk *w, struct config *c, yaml_node_t *root)
{
	static const char *const keys[] = {"listen",	 "store",     "livekit",	 "limits",
					   "plugins",	 "plugin_dir", "templates",	 "template_engine",
					   "routes",	 "log",	       "outbox",	 "metrics",
					   NULL};
	check_keys(w, root, "", keys);
	yaml_node_t *v = map_get(w, root, "listen");
	if (v)
		parse_listen(w, c, v);
	else
		err_at(w, root, "listen", "required (HOST:PORT)");
	if ((v = map_get(w, root, "store")))
		parse_store(w, c, v);
	else
		err_at(w, root, "store", "required (sqlite:PATH or postgres://...)");
	parse_livekit(w, c, map_get(w, root, "livekit"));
	if ((v = map_get(w, root, "limits")))
		parse_limits(w, c, v);
	if ((v = map_get(w, root, "plugin_dir")))
		c->plugin_dir = get_str(w, v, "plugin_dir");
	if ((v = map_get(w, root, "templates")))
		c->templates_dir = get_str(w, v, "templates");
	if ((v = map_get(w, root, "template_engine")))
		c->template_engine = get_str(w, v, "template_engine");
	if ((v = map_get(w, root, "log")))
		parse_log(w, c, v);
	if ((v = map_get(w, root, "outbox")))
		parse_outbox(w, c, v);
	/* PostgreSQL: a row in flight must settle before its lease ends. */
	if (c->store && strncmp(c->store, "sqlite:", 7) &&
	    (c->outbox_connect_timeout + c->outbox_timeout) * 1000 >= STORE_PG_LEASE_MS)
		err_at(w, v ? v : root, "outbox",
		       "with a PostgreSQL store, connect_timeout + timeout must stay below %d s",
		       STORE_PG_LEASE_MS / 1000);
	if ((v = map_get(w, root, "metrics")) && is_map(w, v, "metrics")) {
		static const char *const mkeys[] = {"bearer", NULL};
		check_keys(w, v, "metrics", mkeys);
		yaml_node_t *t = map_get(w, v, "bearer");
		if (t) {
			c->metrics_bearer = get_str(w, t, "metrics.bearer");
			note_secret(w, t);
			if (c->metrics_bearer && strlen(c->metrics_bearer) < 16)
				err_at(w, t, "metrics.bearer", "token too short (at least 16 characters)");
		}
	}
	parse_plugins(w, c, map_get(w, root, "plugins"));
	parse_routes(w, c, map_get(w, root, "routes"));
}

/* A key given twice in one mapping: YAML forbids it, and libyaml keeps both,
 * so the first would win unseen. Every mapping of the file, plugin configs
 * included. */
static void check_duplicates(struct walk *w)
{
	for (yaml_node_t *n = w->doc.nodes.start; n < w->doc.nodes.top; n++) {
		if (n->type != YAML_MAPPING_NODE)
			continue;
		yaml_node_pair_t *pairs = n->data.mapping.pairs.start;
		size_t np = (size_t)(n->data.mapping.pairs.top - pairs);
		for (size_t j = 1; j < np; j++) {
			yaml_node_t *kj = node(w, pairs[j].key);
			const char *name = scalar_raw(kj);
			for (size_t i = 0; name && i < j; i++) {
				yaml_node_t *ki = node(w, pairs[i].key);
				const char *first = scalar_raw(ki);
				if (first && !strcmp(first, name)) {
					err_at(w, kj, name, "given twice (first on line %lu)",
					       (unsigned long)ki->start_mark.line + 1);
					break;
				}
			}
		}
	}
}

struct config *config_load(const char *file, struct strbuf *errs)
{
	struct walk w = {.file = file, .errs = errs};
	FILE *f = fopen(file, "rb");
	if (!f) {
		sb_printf(errs, "%s: cannot open: %s\n", file, strerror(errno));
		return NULL;
	}
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &w.doc)) {
		sb_printf(errs, "%s:%lu: YAML error: %s\n", file,
			  (unsigned long)parser.problem_mark.line + 1,
			  parser.problem ? parser.problem : "unknown");
		yaml_parser_delete(&parser);
		fclose(f);
		return NULL;
	}
	yaml_parser_delete(&parser);
	fclose(f);

	struct config *c = calloc(1, sizeof *c);
	c->file = strdup(file);
	c->leeway = DEFAULT_LEEWAY;
	c->body_limit = DEFAULT_BODY_LIMIT;
	c->read_timeout = DEFAULT_READ_TIMEOUT;
	c->request_timeout = 3 * DEFAULT_READ_TIMEOUT;
	c->max_connections = DEFAULT_CONNECTIONS;
	c->store_sync_full = 1;
	c->outbox_concurrency = DEFAULT_OUTBOX_CONCURRENCY;
	c->outbox_connect_timeout = DEFAULT_OUTBOX_CONNECT_TIMEOUT;
	c->outbox_timeout = DEFAULT_OUTBOX_TIMEOUT;
	c->outbox_retry_base_ms = DEFAULT_OUTBOX_RETRY_BASE_MS;
	c->outbox_retry_cap_ms = DEFAULT_OUTBOX_RETRY_CAP_MS;
	c->log_level = AC_LOG_INFO;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	c->threads = ncpu > 0 ? (unsigned)ncpu : 2;

	yaml_node_t *root = yaml_document_get_root_node(&w.doc);
	if (!root)
		err_at(&w, NULL, "(file)", "empty config");
	else if (is_map(&w, root, "(file)"))
		parse_root(&w, c, root);
	check_duplicates(&w);
	yaml_document_delete(&w.doc);
	c->literal_secrets = w.literal_secrets;
	if (w.nerr) {
		config_free(c);
		return NULL;
	}
	return c;
}

int config_add_routes(struct config *c, const char *origin, const char *json, size_t first,
		      struct strbuf *errs)
{
	struct walk w = {.file = origin, .errs = errs, .plain = 1};
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)json, strlen(json));
	int loaded = yaml_parser_load(&parser, &w.doc);
	if (!loaded)
		sb_printf(errs, "%s: routes: not JSON: %s\n", origin,
			  parser.problem ? parser.problem : "unknown");
	yaml_parser_delete(&parser);
	if (!loaded)
		return -1;
	yaml_node_t *root = yaml_document_get_root_node(&w.doc);
	if (!root)
		err_at(&w, NULL, "routes", "empty");
	else
		parse_route_seq(&w, c, root, "routes", first);
	yaml_document_delete(&w.doc);
	return w.nerr ? -1 : 0;
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

const char *config_restart_needed(const struct config *a, const struct config *b)
{
	if (!same_str(a->listen_host, b->listen_host) || a->listen_port != b->listen_port)
		return "listen";
	if (!same_str(a->store, b->store) || a->store_sync_full != b->store_sync_full)
		return "store";
	if (a->read_timeout != b->read_timeout || a->max_connections != b->max_connections ||
	    a->threads != b->threads)
		return "limits (read_timeout, connections or threads)";
	if (a->outbox_concurrency != b->outbox_concurrency ||
	    a->outbox_connect_timeout != b->outbox_connect_timeout ||
	    a->outbox_timeout != b->outbox_timeout ||
	    a->outbox_retry_base_ms != b->outbox_retry_base_ms ||
	    a->outbox_retry_cap_ms != b->outbox_retry_cap_ms)
		return "outbox";
	if (!same_str(a->plugin_dir, b->plugin_dir) || !same_str(a->template_engine, b->template_engine))
		return "plugin_dir or template_engine";
	if (a->nplugins != b->nplugins)
		return "plugins";
	for (size_t i = 0; i < a->nplugins; i++)
		if (!same_str(a->plugins[i].name, b->plugins[i].name) ||
		    !same_str(a->plugins[i].path, b->plugins[i].path) ||
		    !same_str(a->plugins[i].config_json, b->plugins[i].config_json))
			return "plugins";
	if (a->nroutes != b->nroutes)
		return "routes";
	for (size_t i = 0; i < a->nroutes; i++) {
		const struct route *x = &a->routes[i], *y = &b->routes[i];
		if (!same_str(x->path, y->path) || x->is_get != y->is_get ||
		    !same_str(x->event_type, y->event_type) || x->nchain != y->nchain ||
		    memcmp(x->chain, y->chain, x->nchain * sizeof *x->chain))
			return "routes (paths, methods or plugin chains)";
	}
	return NULL;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->file);
	free(c->listen_host);
	free(c->store);
	for (size_t i = 0; i < c->nkeys; i++) {
		free(c->keys[i].key);
		free(c->keys[i].secret);
	}
	free(c->keys);
	free(c->plugin_dir);
	free(c->templates_dir);
	free(c->template_engine);
	free(c->metrics_bearer);
	for (size_t i = 0; i < c->nplugins; i++) {
		free(c->plugins[i].name);
		free(c->plugins[i].path);
		free(c->plugins[i].config_json);
	}
	free(c->plugins);
	for (size_t i = 0; i < c->nroutes; i++) {
		struct route *r = &c->routes[i];
		free(r->path);
		for (size_t k = 0; k < r->nverify; k++) {
			free(r->verify[k].header);
			free(r->verify[k].prefix);
			free(r->verify[k].secret);
		}
		free(r->verify);
		free(r->event_type);
		free(r->chain);
	}
	free(c->routes);
	free(c);
}
