/* The dispatcher: the one thread that decides. */
#ifndef AC_DISPATCH_H
#define AC_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "plugins.h"
#include "store.h"
#include "templates.h"

/* An accepted request on its way through the dispatcher. The HTTP layer
 * fills the inputs, submits it, and is called back through done() once the
 * batch holding it was committed (or failed). */
struct job {
	/* inputs */
	const struct route *route;
	const char *body;
	size_t len;
	char type[128];
	char dedupe[136];
	char request_id[40];
	int64_t received_ms;
	/* a query (GET route): what stood for {name}; the answer comes back in
	 * answer/answer_len (malloc'd, freed by the HTTP layer) */
	int is_query;
	char param[256];
	char *answer;
	size_t answer_len;
	/* outputs, set before done() */
	int status;	    /* HTTP status to answer */
	const char *result; /* "accepted", "duplicate", or why not */
	char reason[256];   /* a plugin's words when it rejected the event */
	int pre;	    /* the dispatcher's: journaled with the batch (1), found there (0) */
	int replay;	    /* journaled before: run the plugins again, journal nothing */
	/* completion, called on the dispatcher thread */
	void (*done)(struct job *j);
	void *ctx;
	struct job *next;
};

struct dispatcher;

/* Makes the dispatcher and the per-plugin host handles, then init()s every
 * plugin. `templates` serves the render service (NULL: render fails). The
 * dispatcher owns the loaded plugins from here on, also on failure. On
 * failure returns NULL with the message in err. */
struct dispatcher *dispatcher_new(const struct config *cfg, struct store *store,
				  struct template_ref *templates, struct plugin *plugins,
				  size_t nplugins, char *err, size_t errlen);
int dispatcher_start(struct dispatcher *d);
/* Runs one journaled event (j->replay set; route, type, dedupe, body and
 * received_ms as journaled; a request_id of its own) through its route's plugins
 * again, in a transaction of its own, as serve would: no dedupe, no new
 * journal row, and a host audit record event.replayed when it is accepted.
 * On the calling thread, with the dispatcher not started; sets j->status
 * and j->result. What the plugins queue is left for serve to send. */
void dispatcher_replay(struct dispatcher *d, struct job *j);
/* A host handle for `check` to run plugin p's init with: log (under the
 * plugin's name) and render (from templates, which may be NULL) work, the
 * services that need a transaction refuse. free() it once p is unloaded. */
struct ac_host *dispatcher_check_host(struct plugin *p, struct template_ref *templates);
void dispatcher_submit(struct dispatcher *d, struct job *j);
/* Finishes the queued jobs, stops the thread and destroys the plugins. */
void dispatcher_stop(struct dispatcher *d);
void dispatcher_free(struct dispatcher *d);
/* 1 while the thread runs and the store took its last write. */
int dispatcher_healthy(struct dispatcher *d);

/* The host services table handed to plugins (also used by `check`). */
extern const ac_host_services host_services;

/* Renders through a template_ref: the service behind host_services.render,
 * shared with the command line. */
int render_with(struct template_ref *ref, const char *name, const char *ctx, size_t len,
		ac_rendered *out, char *err, size_t errlen);

#endif
