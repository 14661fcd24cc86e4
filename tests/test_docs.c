/* The documents a clean clone must have (scripts/check_docs.sh): every
 * relative link of README.md and docs/ resolves, nothing links ../shared,
 * CHANGELOG.md, CITATION.cff and the Python package carry the version of
 * version.h, and docs/cli.md documents every option of every command's
 * --help. The check passes on this tree and fails on small trees that break it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attnflow/version.h"
#include "support/fixtures.h"

static char out[8192];

/* Runs the check on root (with the CLI when cli is not NULL); returns its exit status. */
static int check_with(const char *root, const char *cli)
{
    char args[1024];
    snprintf(args, sizeof args, "'%s/scripts/check_docs.sh' '%s' '%s'", AF_SRC_ROOT, root,
             cli ? cli : "");
    return fx_run_cli("sh", args, out, sizeof out);
}

static int check(const char *root) { return check_with(root, NULL); }

/* A scratch tree with consistent version files and the given README. */
static const char *tree(const char *readme, const char *changelog_version)
{
    static char root[256];
    strcpy(root, "/tmp/af_docs_XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    char path[512];
    snprintf(path, sizeof path, "%s/include/attnflow", root);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p %s %s/docs && touch %s/LICENSE %s/docs/theory.md", path,
             root, root, root);
    cr_assert_eq(system(cmd), 0);
    struct { const char *name, *text; } files[] = {
        { "include/attnflow/version.h", "#define AF_VERSION \"1.2.3\"\n" },
        { "CITATION.cff", "cff-version: 1.2.0\nversion: 1.2.3\n" },
        { "README.md", readme },
    };
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        snprintf(path, sizeof path, "%s/%s", root, files[k].name);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(files[k].text, f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/CHANGELOG.md", root);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "# Changelog\n\n## %s - today\n\n## 0.0.1\n", changelog_version);
    fclose(f);
    return root;
}

static void rmtree(const char *root)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    cr_assert_eq(system(cmd), 0);
}

Test(docs, this_tree_has_every_linked_document)
{
    cr_expect_eq(check(AF_SRC_ROOT), 0, "%s", out);
}

Test(docs, every_option_of_every_command_is_in_docs_cli_md)
{
    cr_expect_eq(check_with(AF_SRC_ROOT, AF_CLI), 0, "%s", out);
}

Test(docs, an_undocumented_option_fails)
{
    const char *root = tree("No links.\n", "1.2.3");
    char cmd[1024];
    /* docs/cli.md with every section but without heat's --kappa */
    snprintf(cmd, sizeof cmd, "sed 's/`--kappa K`/`--k K`/' '%s/docs/cli.md' > %s/docs/cli.md",
             AF_SRC_ROOT, root);
    cr_assert_eq(system(cmd), 0);
    cr_expect_eq(check_with(root, AF_CLI), 1);
    cr_expect(strstr(out, "docs/cli.md: heat --kappa undocumented") != NULL, "%s", out);
    rmtree(root);
}

Test(docs, a_good_scratch_tree_passes)
{
    const char *root = tree("See [theory](docs/theory.md) and [site](https://example.org).\n", "1.2.3");
    cr_expect_eq(check(root), 0, "%s", out);
    rmtree(root);
}

/* The check fails on a scratch tree with this README and CHANGELOG version,
 * saying why. */
static void expect_failure(const char *readme, const char *changelog_version, const char *why)
{
    const char *root = tree(readme, changelog_version);
    cr_expect_eq(check(root), 1, "%s", out);
    cr_expect(strstr(out, why) != NULL, "expected '%s' in: %s", why, out);
    rmtree(root);
}

Test(docs, a_missing_link_target_fails)
{
    expect_failure("See [design](docs/design.md).\n", "1.2.3", "missing link target: docs/design.md");
}

Test(docs, a_link_out_of_the_tree_fails)
{
    expect_failure("Background in [notes](../shared/docs/theory.md).\n", "1.2.3", "leaves the tree");
}

Test(docs, a_changelog_behind_the_version_fails)
{
    expect_failure("No links.\n", "1.2.2", "CHANGELOG.md: newest entry '1.2.2'");
}

Test(docs, the_linked_library_reports_the_header_version)
{
    cr_expect_str_eq(af_version(), AF_VERSION);
}
