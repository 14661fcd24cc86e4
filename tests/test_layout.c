/* The module rule of src/ (docs/design.md): scripts/check_layout.sh passes on
 * this tree and fails on trees that break the rule. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char out[8192];

/* Runs the check on root; returns its exit status. */
static int check(const char *root)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sh '%s/scripts/check_layout.sh' '%s' 2>&1", AF_SRC_ROOT, root);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A scratch tree with two modules; each case adds one file to it. */
static const char *tree(const char *path, const char *text)
{
    static char root[256];
    strcpy(root, "/tmp/af_layout_XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && mkdir -p src/core src/attention src/flow src/pde && "
             "echo '#include \"attnflow/error.h\"' > src/core/error.c && "
             "touch src/core/af_blas.h src/attention/normalize_internal.h && "
             "mkdir -p $(dirname %s) && printf '%%s\\n' '%s' > %s",
             root, path, text, path);
    cr_assert_eq(system(cmd), 0);
    return root;
}

static void rmtree(const char *root)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    system(cmd);
}

Test(layout, this_tree_follows_the_rule)
{
    cr_expect_eq(check(AF_SRC_ROOT), 0, "%s", out);
}

Test(layout, allowed_includes_pass)
{
    const char *ok[][2] = {
        {"src/attention/scores.c", "#include \"normalize_internal.h\""},
        {"src/flow/flow.c", "#include \"core/af_blas.h\""},
        {"src/flow/flow.c", "#include \"attnflow/normalize.h\""},
        {"bench/bench_x.c", "#include \"attention/normalize_internal.h\""},
        {"src/cli/cmd.c", "#include \"attnflow/heat.h\""},
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        const char *r = tree(ok[k][0], ok[k][1]);
        cr_expect_eq(check(r), 0, "case %zu: %s", k, out);
        rmtree(r);
    }
}

Test(layout, sibling_private_header_fails)
{
    const char *r = tree("src/flow/flow.c", "#include \"attention/normalize_internal.h\"");
    cr_expect_eq(check(r), 1);
    cr_expect(strstr(out, "src/flow/flow.c:1: 'attention/normalize_internal.h' is module 'attention''s private header"), "%s", out);
    rmtree(r);
}

Test(layout, bare_private_header_from_another_folder_fails)
{
    const char *r = tree("src/flow/flow.c", "#include \"normalize_internal.h\"");
    cr_expect_eq(check(r), 1);
    cr_expect(strstr(out, "is not in src/flow/"), "%s", out);
    rmtree(r);
}

Test(layout, wing_using_a_sibling_wing_fails)
{
    const char *r = tree("src/pde/heat.c", "#include \"attnflow/flow.h\"");
    cr_expect_eq(check(r), 1);
    cr_expect(strstr(out, "module 'pde' may not use 'flow'"), "%s", out);
    rmtree(r);
    r = tree("src/attention/scores.c", "#include \"attnflow/train.h\"");
    cr_expect_eq(check(r), 1, "a lower module may not use a wing: %s", out);
    rmtree(r);
}

Test(layout, flat_source_in_src_fails)
{
    const char *r = tree("src/stray.c", "int x;");
    cr_expect_eq(check(r), 1);
    cr_expect(strstr(out, "src/stray.c: library sources live in a module folder"), "%s", out);
    rmtree(r);
}
