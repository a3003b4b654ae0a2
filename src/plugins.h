/* Loading plugins: dlopen, the ABI checks, init and destroy. */
#ifndef AC_PLUGINS_H
#define AC_PLUGINS_H

#include <stddef.h>

#include <aftercall/plugin.h>

#include "config.h"

struct plugin {
	char *name;
	char *file;
	void *dl;
	const ac_plugin *d;
	void *state;
	int inited;
	ac_host *host; /* given to init; owned by whoever made it */
};

/* True when the descriptor, as the plugin was built, holds `field`. */
#define PLUGIN_HAS(desc, field)                                                                    \
	((desc)->struct_size >= offsetof(ac_plugin, field) + sizeof((desc)->field) &&              \
	 (desc)->field != NULL)

/* The file a plugin is loaded from: its `path`, else DIR/NAME.so. */
char *plugin_path(const struct plugin_conf *pc, const char *plugin_dir);

/* Checks a descriptor against this host's ABI. 0, or -1 with the reason. */
int plugin_check_abi(const ac_plugin *d, const char *file, char *err, size_t errlen);

/* dlopen()s the plugin and checks its descriptor. 0, or -1 with a message
 * naming the file. */
int plugin_load(struct plugin *p, const struct plugin_conf *pc, const char *plugin_dir, char *err,
		size_t errlen);

/* Calls init(). 0, or -1 with the plugin's own message. */
int plugin_init(struct plugin *p, const ac_host_services *svc, ac_host *host,
		const char *config_json, char *err, size_t errlen);

/* Calls destroy() if init() succeeded, then dlclose()s. */
void plugin_unload(struct plugin *p);

#endif
