/*
 * Plugins that must be refused: built with -DBAD=major for another ABI
 * major, -DBAD=minor for a newer minor, -DBAD=nocb without on_event.
 */
#include <stddef.h>

#include <aftercall/plugin.h>

static int init(const ac_host_services *svc, ac_host *host, const char *config_json, void **state,
		char *err, size_t errlen)
{
	*state = NULL;
	return 0;
}

#define major 1
#define minor 2
#define nocb 3

#if BAD != nocb
static ac_verdict on_event(void *state, const ac_event *ev, char *err, size_t errlen)
{
	return AC_CONTINUE;
}
#endif

static void destroy(void *state)
{
}

AC_PLUGIN_EXPORT const ac_plugin aftercall_plugin = {
#if BAD == major
	.abi_major = AC_PLUGIN_ABI_MAJOR + 1,
	.abi_minor = 0,
#elif BAD == minor
	.abi_major = AC_PLUGIN_ABI_MAJOR,
	.abi_minor = AC_PLUGIN_ABI_MINOR + 1,
#else
	.abi_major = AC_PLUGIN_ABI_MAJOR,
	.abi_minor = AC_PLUGIN_ABI_MINOR,
#endif
	.struct_size = sizeof(ac_plugin),
	.name = "bad",
	.version = "0",
	.init = init,
#if BAD != nocb
	.on_event = on_event,
#endif
	.destroy = destroy,
};
