/* make install as GSL and FFTW do it (scripts/check_install.sh): the shared
 * library exports only af_ names under soname libattnflow.so.MAJOR; a
 * DESTDIR install builds and runs the README's C example through
 * pkg-config; the man pages carry every option of --help; make uninstall
 * removes what make install put. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "support/fixtures.h"

/* Runs one check on this build (the folder of AF_CLI); returns its status. */
static int check(const char *name, char *out, size_t cap)
{
    char build[512];
    snprintf(build, sizeof build, "%s", AF_CLI);
    char *slash = strrchr(build, '/');
    cr_assert_not_null(slash);
    *slash = '\0';
    char args[1200];
    snprintf(args, sizeof args, "'%s/scripts/check_install.sh' %s '%s'", AF_SRC_ROOT, name, build);
    return fx_run_cli("sh", args, out, cap);
}

static char out[16384];

Test(install, shared_library_exports_only_af_names_under_its_soname)
{
    cr_expect_eq(check("exports", out, sizeof out), 0, "%s", out);
}

Test(install, readme_example_builds_with_pkg_config_against_a_destdir_install, .timeout = 120)
{
    cr_expect_eq(check("example", out, sizeof out), 0, "%s", out);
}

Test(install, man_pages_have_every_option_of_help, .timeout = 120)
{
    cr_expect_eq(check("man", out, sizeof out), 0, "%s", out);
}

Test(install, uninstall_removes_every_installed_file, .timeout = 120)
{
    cr_expect_eq(check("uninstall", out, sizeof out), 0, "%s", out);
}
