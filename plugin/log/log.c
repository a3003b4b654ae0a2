/*
 * The `log` plugin: writes one log line per event it sees (type, id, room),
 * then passes the event on. A first plugin to point LiveKit at, and a model
 * of the ABI in a few lines.
 *
 * Config: level (debug|info|warn|error, default info).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <aftercall/plugin.h>

struct state {
	const ac_host_services *svc;
	ac_host *host;
	ac_log_level level;
	int (*log_enabled)(ac_host *host, ac_log_level level); /* NULL: host older than 1.6 */
};

static int init(const ac_host_services *svc, ac_host *host, const char *config_json, void **out,
		char *err, size_t errlen)
{
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	json_error_t jerr;
	json_t *cfg = json_loads(config_json, 0, &jerr);
	if (!json_is_object(cfg)) {
		json_decref(cfg);
		snprintf(err, errlen, "config is not a JSON object");
		return -1;
	}
	struct state *s = calloc(1, sizeof *s);
	if (!s) {
		json_decref(cfg);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->svc = svc;
	s->host = host;
	if (svc->struct_size >= offsetof(ac_host_services, log_enabled) + sizeof svc->log_enabled)
		s->log_enabled = svc->log_enabled;
	s->level = AC_LOG_INFO;
	json_t *lv = json_object_get(cfg, "level");
	if (lv) {
		const char *name = json_string_value(lv);
		int found = 0;
		for (int i = 0; name && i < 4; i++)
			if (!strcmp(name, levels[i])) {
				s->level = (ac_log_level)i;
				found = 1;
			}
		if (!found) {
			snprintf(err, errlen, "level: expected debug, info, warn or error");
			json_decref(cfg);
			free(s);
			return -1;
		}
	}
	json_decref(cfg);
	*out = s;
	return 0;
}

static ac_verdict on_event(void *state, const ac_event *ev, char *err, size_t errlen)
{
	struct state *s = state;
	/* The line is dropped at the host's level: spare the parse. */
	if (s->log_enabled && !s->log_enabled(s->host, s->level))
		return AC_CONTINUE;
	const char *room = "";
	json_t *body = json_loadb(ev->body, ev->body_len, 0, NULL);
	json_t *r = json_object_get(body, "room");
	if (json_is_object(r) && json_is_string(json_object_get(r, "name")))
		room = json_string_value(json_object_get(r, "name"));
	s->svc->log(s->host, s->level, "%s %s room=%s", ev->type, ev->id, room);
	json_decref(body);
	return AC_CONTINUE;
}

static void destroy(void *state)
{
	free(state);
}

AC_PLUGIN_EXPORT const ac_plugin aftercall_plugin = {
	AC_PLUGIN_HEADER,
	.name = "log",
	.version = "1.0.0",
	.init = init,
	.on_event = on_event,
	.destroy = destroy,
};
