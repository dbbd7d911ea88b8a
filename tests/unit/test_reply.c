/* test_reply: the reply catalogue (src/mail/replies.def) against its contract, docs/replies.md.
 *
 * Every catalogue entry's "<code> <text>" must equal, in full, some `backtick span` of
 * docs/replies.md, where each %s in the text stands for one or more characters (the document
 * writes <param>, <s.sss>, <reason>... there). Entries whose whole text is "%s" (banner, help,
 * size message built elsewhere) are skipped. Matching whole spans (not substrings) catches a
 * dropped or added trailing period. Also checks reply_format on a few entries.
 * Runs with the repository root as working directory (meson test workdir). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/reply.h"

#define DOC_PATH "docs/replies.md"

/* Entries known not to appear in docs/replies.md, reported to the lead. Each must really be
 * missing (the test fails once it is documented, so the list cannot go stale). */
static const char *const known_undocumented[] = {
    NULL, /* none today; add catalogue names here (e.g. "R_SOMETHING") with a reason */
};

static char *read_doc(void)
{
    FILE *f = fopen(DOC_PATH, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (run from the repository root)", DOC_PATH);
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            data = realloc(data, cap);
            assert_non_null(data);
        }
        size_t n = fread(data + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    data[len] = '\0';
    return data;
}

/* Does s[0..n) match pattern in full, "%s" matching one or more characters? */
static bool pattern_match(const char *pattern, const char *s, size_t n)
{
    if (*pattern == '\0')
        return n == 0;
    if (pattern[0] == '%' && pattern[1] == 's') {
        for (size_t k = 1; k <= n; k++)
            if (pattern_match(pattern + 2, s + k, n - k))
                return true;
        return false;
    }
    return n > 0 && *s == *pattern && pattern_match(pattern + 1, s + 1, n - 1);
}

/* Is there a `span` in doc matching pattern in full? Spans do not cross lines. */
static bool doc_has(const char *doc, const char *pattern)
{
    const char *p = doc;
    while ((p = strchr(p, '`')) != NULL) {
        const char *start = p + 1;
        const char *end = start;
        while (*end != '\0' && *end != '`' && *end != '\n')
            end++;
        if (*end != '`') {
            if (*end == '\0')
                break;
            p = end; /* an unterminated span: resume at the next line */
            continue;
        }
        if (pattern_match(pattern, start, (size_t)(end - start)))
            return true;
        p = end + 1;
    }
    return false;
}

static bool is_known_undocumented(const char *name)
{
    for (size_t i = 0; i < sizeof(known_undocumented) / sizeof(known_undocumented[0]); i++)
        if (known_undocumented[i] && strcmp(known_undocumented[i], name) == 0)
            return true;
    return false;
}

static void test_pattern_match(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *s;
        bool match;
    } cases[] = {
        {"550 Unknown user", "550 Unknown user", true},
        {"550 Unknown user", "550 Unknown user.", false},
        {"550 Unknown user.", "550 Unknown user", false},
        {"250 Queued (%s seconds)", "250 Queued (<s.sss> seconds)", true},
        {"250 Queued (%s seconds)", "250 Queued ( seconds)", false},
        {"555 Unsupported ESMTP extension: %s", "555 Unsupported ESMTP extension: <param>", true},
        {"555 Unsupported ESMTP extension: %s", "555 Unsupported ESMTP extension: ", false},
        {"%s x", "a x x", true},
        {"334 ", "334 ", true},
        {"334 ", "334", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = pattern_match(cases[i].pattern, cases[i].s, strlen(cases[i].s));
        if (got != cases[i].match)
            fail_msg("pattern_match(\"%s\", \"%s\") = %d", cases[i].pattern, cases[i].s, got);
    }
    const char *doc = "a `550 Unknown user` b\n`250 OK` / `unterminated\n`334 ` end";
    assert_true(doc_has(doc, "550 Unknown user"));
    assert_true(doc_has(doc, "250 OK"));
    assert_true(doc_has(doc, "334 "));
    assert_false(doc_has(doc, "550 Unknown"));
    assert_false(doc_has(doc, "unterminated"));
}

static void test_catalogue_in_doc(void **state)
{
    (void)state;
    char *doc = read_doc();
    int missing = 0, checked = 0, skipped = 0;
    for (int id = 0; id < R__COUNT; id++) {
        const struct reply_info *ri = reply_info((enum reply_id)id);
        assert_non_null(ri->name);
        assert_non_null(ri->text);
        assert_in_range(ri->code, 200, 599);
        if (strcmp(ri->text, "%s") == 0) {
            skipped++;
            continue;
        }
        char pattern[1200];
        snprintf(pattern, sizeof(pattern), "%d %s", ri->code, ri->text);
        bool found = doc_has(doc, pattern);
        bool known = is_known_undocumented(ri->name);
        if (!found && !known) {
            print_error("%s: \"%s\" does not appear in %s\n", ri->name, pattern, DOC_PATH);
            missing++;
        } else if (found && known) {
            print_error("%s: \"%s\" is documented now; remove it from known_undocumented\n",
                        ri->name, pattern);
            missing++;
        }
        checked++;
    }
    free(doc);
    print_message("catalogue: %d entries checked, %d skipped (text \"%%s\")\n", checked, skipped);
    assert_true(checked > 40);
    assert_int_equal(missing, 0);
}

static void test_known_list_names_exist(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(known_undocumented) / sizeof(known_undocumented[0]); i++) {
        if (!known_undocumented[i])
            continue;
        bool seen = false;
        for (int id = 0; id < R__COUNT; id++)
            if (strcmp(reply_info((enum reply_id)id)->name, known_undocumented[i]) == 0)
                seen = true;
        if (!seen)
            fail_msg("known_undocumented names %s, which is not in the catalogue",
                     known_undocumented[i]);
    }
}

static void test_reply_format(void **state)
{
    (void)state;
    char out[256];
    size_t n = reply_format(R_UNKNOWN_USER, NULL, out, sizeof(out));
    assert_string_equal(out, "550 Unknown user");
    assert_int_equal(n, strlen(out));
    reply_format(R_UNSUPPORTED_EXT, "SMTPUTF8", out, sizeof(out));
    assert_string_equal(out, "555 Unsupported ESMTP extension: SMTPUTF8");
    reply_format(R_QUEUED, "0.125", out, sizeof(out));
    assert_string_equal(out, "250 Queued (0.125 seconds)");
    reply_format(R_AUTH_EMPTY_CHALLENGE, NULL, out, sizeof(out));
    assert_string_equal(out, "334 ");
    n = reply_format(R_MAIL_SYNTAX, NULL, out, 10);
    assert_int_equal(n, 9);
    assert_string_equal(out, "550 Inval");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_match),
        cmocka_unit_test(test_catalogue_in_doc),
        cmocka_unit_test(test_known_list_names_exist),
        cmocka_unit_test(test_reply_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
