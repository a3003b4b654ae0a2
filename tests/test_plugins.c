#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "plugins.h"
#include "testutil.h"

static int load(const char *so, char *err, size_t errlen, struct plugin *p)
{
	char path[4200];
	const char *dir = getenv("TEST_PLUGINS");
	snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/plugins/.libs", so);
	struct plugin_conf pc = {.name = "x", .path = path};
	return plugin_load(p, &pc, "/nowhere", err, errlen);
}

START_TEST(loads_a_good_plugin)
{
	struct plugin p;
	char err[1024] = "";
	ck_assert_msg(load("counter.so", err, sizeof err, &p) == 0, "%s", err);
	ck_assert_str_eq(p.d->name, "counter");
	ck_assert(PLUGIN_HAS(p.d, on_timer));
	ck_assert(PLUGIN_HAS(p.d, on_delivery));
	plugin_unload(&p);
	/* bad_nocb.so has neither optional callback. */
	p.d = NULL;
	load("bad_nocb.so", err, sizeof err, &p);
	ck_assert_ptr_nonnull(p.d);
	ck_assert(!PLUGIN_HAS(p.d, on_timer));
	ck_assert(!PLUGIN_HAS(p.d, on_delivery));
	plugin_unload(&p);
}
END_TEST

START_TEST(refuses_another_major)
{
	struct plugin p;
	char err[1024];
	char want[256];
	ck_assert_int_eq(load("bad_major.so", err, sizeof err, &p), -1);
	snprintf(want, sizeof want,
		 "bad_major.so: plugin ABI %u.0 is not compatible with this host's ABI %u.%u "
		 "(major versions differ)",
		 AC_PLUGIN_ABI_MAJOR + 1, AC_PLUGIN_ABI_MAJOR, AC_PLUGIN_ABI_MINOR);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	plugin_unload(&p);
}
END_TEST

START_TEST(refuses_a_newer_minor)
{
	struct plugin p;
	char err[1024];
	char want[256];
	ck_assert_int_eq(load("bad_minor.so", err, sizeof err, &p), -1);
	snprintf(want, sizeof want, "bad_minor.so: plugin ABI %u.%u is newer than this host's ABI %u.%u",
		 AC_PLUGIN_ABI_MAJOR, AC_PLUGIN_ABI_MINOR + 1, AC_PLUGIN_ABI_MAJOR,
		 AC_PLUGIN_ABI_MINOR);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	plugin_unload(&p);
}
END_TEST

START_TEST(refuses_a_missing_callback)
{
	struct plugin p;
	char err[1024];
	ck_assert_int_eq(load("bad_nocb.so", err, sizeof err, &p), -1);
	ck_assert_msg(strstr(err, "bad_nocb.so: plugin lacks the required field on_event") != NULL,
		      "%s", err);
	plugin_unload(&p);
}
END_TEST

START_TEST(refuses_small_descriptor)
{
	ac_plugin d = {.abi_major = AC_PLUGIN_ABI_MAJOR, .abi_minor = 0, .struct_size = 12};
	char err[512];
	ck_assert_int_eq(plugin_check_abi(&d, "tiny.so", err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "tiny.so: plugin descriptor is 12 bytes"));
}
END_TEST

START_TEST(names_a_missing_file)
{
	struct plugin p;
	char err[1024];
	struct plugin_conf pc = {.name = "ghost"};
	ck_assert_int_eq(plugin_load(&p, &pc, "/nonexistent/dir", err, sizeof err), -1);
	ck_assert_msg(strstr(err, "plugin ghost: cannot load: /nonexistent/dir/ghost.so") != NULL,
		      "%s", err);
	plugin_unload(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plugins");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, loads_a_good_plugin);
	tcase_add_test(tc, refuses_another_major);
	tcase_add_test(tc, refuses_a_newer_minor);
	tcase_add_test(tc, refuses_a_missing_callback);
	tcase_add_test(tc, refuses_small_descriptor);
	tcase_add_test(tc, names_a_missing_file);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
