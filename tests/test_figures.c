/* The figure pipeline (plots/README.md) on a small configuration:
 * scripts/test_figures.sh trains train_digits for one epoch per run in a
 * scratch folder and checks the summary against epochs.dat, the README
 * renderer (render, --check, changed number, unknown key, QUICK runs never
 * rendered) and the gallery page; with chromium installed it also loads the
 * page in headless Chromium (every image loaded, a broken image caught). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

Test(figures, summary_renderer_and_gallery, .timeout = 300)
{
    char dir[] = "/tmp/af_figures_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && sh scripts/test_figures.sh '%s' '%s/work' > '%s/log' 2>&1",
             AF_SRC_ROOT, AF_CLI, dir, dir);
    int st = system(cmd);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/log' >&2", dir);
        (void) !system(cmd);
    }
    cr_assert_eq(rc, 0, "scripts/test_figures.sh failed (log above)");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void) !system(cmd);
}
