# AC_REQUIRE_PKG(VARIABLE-PREFIX, PKG-CONFIG-MODULE, DEBIAN-PACKAGE)
# ----------------------------------------------------------------
# Finds a library through pkg-config and, when it is missing, stops with a
# message naming the Debian package that provides it.
AC_DEFUN([AC_REQUIRE_PKG], [
	PKG_CHECK_MODULES([$1], [$2], [],
		[AC_MSG_ERROR([$2 was not found by pkg-config.
On Debian or Ubuntu install it with:  apt-get install $3])])
])
