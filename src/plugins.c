/*
 * Plugin loading. The checks run in the order that keeps them safe: the
 * version fields first (they sit first in the descriptor precisely so that
 * reading them is safe whatever else changed), then the size, then the
 * required callbacks.
 */
#include "autoconfig.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins.h"
#include "strbuf.h"

char *plugin_path(const struct plugin_conf *pc, const char *plugin_dir)
{
	if (pc->path)
		return strdup(pc->path);
	struct strbuf b;
	sb_init(&b);
	sb_printf(&b, "%s/%s.so", plugin_dir, pc->name);
	return sb_steal(&b);
}

int plugin_check_abi(const ac_plugin *d, const char *file, char *err, size_t errlen)
{
	if (d->abi_major != AC_PLUGIN_ABI_MAJOR) {
		snprintf(err, errlen,
			 "%s: plugin ABI %u.%u is not compatible with this host's ABI %u.%u"
			 " (major versions differ); rebuild the plugin against this host's headers",
			 file, d->abi_major, d->abi_minor, AC_PLUGIN_ABI_MAJOR, AC_PLUGIN_ABI_MINOR);
		return -1;
	}
	if (d->abi_minor > AC_PLUGIN_ABI_MINOR) {
		snprintf(err, errlen,
			 "%s: plugin ABI %u.%u is newer than this host's ABI %u.%u;"
			 " upgrade aftercall or rebuild the plugin against this host's headers",
			 file, d->abi_major, d->abi_minor, AC_PLUGIN_ABI_MAJOR, AC_PLUGIN_ABI_MINOR);
		return -1;
	}
	/* Every minor of major 1 holds at least the fields up to destroy. */
	size_t min = offsetof(ac_plugin, destroy) + sizeof(d->destroy);
	if (d->struct_size < min) {
		snprintf(err, errlen, "%s: plugin descriptor is %u bytes, smaller than ABI %u.%u's %zu",
			 file, d->struct_size, d->abi_major, d->abi_minor, min);
		return -1;
	}
	const char *missing = !d->name	    ? "name"
			      : !d->init     ? "init"
			      : !d->on_event ? "on_event"
			      : !d->destroy  ? "destroy"
					     : NULL;
	if (missing) {
		snprintf(err, errlen, "%s: plugin lacks the required field %s", file, missing);
		return -1;
	}
	return 0;
}

int plugin_load(struct plugin *p, const struct plugin_conf *pc, const char *plugin_dir, char *err,
		size_t errlen)
{
	memset(p, 0, sizeof *p);
	p->name = strdup(pc->name);
	p->file = plugin_path(pc, plugin_dir);
	if (!p->name || !p->file) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* RTLD_LOCAL: two plugins may well define the same static names. */
	p->dl = dlopen(p->file, RTLD_NOW | RTLD_LOCAL);
	if (!p->dl) {
		snprintf(err, errlen, "plugin %s: cannot load: %s", p->name, dlerror());
		return -1;
	}
	p->d = dlsym(p->dl, AC_PLUGIN_SYMBOL);
	if (!p->d) {
		snprintf(err, errlen, "%s: no %s symbol: not an aftercall plugin", p->file,
			 AC_PLUGIN_SYMBOL);
		return -1;
	}
	return plugin_check_abi(p->d, p->file, err, errlen);
}

int plugin_init(struct plugin *p, const ac_host_services *svc, ac_host *host,
		const char *config_json, char *err, size_t errlen)
{
	char perr[1024] = "";
	p->host = host;
	if (p->d->init(svc, host, config_json, &p->state, perr, sizeof perr) != 0) {
		perr[sizeof perr - 1] = '\0';
		snprintf(err, errlen, "plugin %s: init failed: %s", p->name,
			 *perr ? perr : "(no message)");
		return -1;
	}
	p->inited = 1;
	return 0;
}

void plugin_unload(struct plugin *p)
{
	if (p->inited)
		p->d->destroy(p->state);
	p->inited = 0;
	if (p->dl)
		dlclose(p->dl);
	free(p->name);
	free(p->file);
	memset(p, 0, sizeof *p);
}
