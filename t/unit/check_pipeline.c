/*
 * crm_pipeline: loading the pipeline folder, every refusal with the file
 * and the element it names, the lookups, and the pipeline we ship.
 *
 * Each test builds a throwaway folder under mkdtemp(): a valid pipeline
 * first, then the one file under test overwritten with a mistake.
 */

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crm_check.h"
#include "crm_pipeline.h"


static void check_pipeline_setup(void);
static void check_pipeline_teardown(void);
static int check_pipeline_rm(const char *path, const struct stat *st,
    int flag, struct FTW *ftw);
static void check_pipeline_write(const char *rel, const char *text);
static void check_pipeline_write_n(const char *rel, const char *text,
    size_t len);
static void check_pipeline_valid(void);
static void check_pipeline_refused(const char *rel, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void check_pipeline_substages_refused(const char *elem,
    const char *what);
static char *check_pipeline_repeat(const char *unit, size_t n);
static Suite *check_pipeline_suite(void);


/* a substage that passes, to put before the one under test */
#define CHECK_PIPELINE_GOOD                                                  \
    "{\"status\": \"contacted\", \"description\": \"First touch sent.\", "    \
    "\"score\": 20, \"notes\": \"\"}"


static char  check_pipeline_dir[sizeof("/tmp/check_pipeline.XXXXXX")];


static void
check_pipeline_setup(void)
{
    strcpy(check_pipeline_dir, "/tmp/check_pipeline.XXXXXX");

    ck_assert_ptr_nonnull(mkdtemp(check_pipeline_dir));
}


static void
check_pipeline_teardown(void)
{
    ck_assert_int_eq(nftw(check_pipeline_dir, check_pipeline_rm, 16,
                          FTW_DEPTH | FTW_PHYS), 0);
}


static int
check_pipeline_rm(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
    (void) st;
    (void) ftw;

    return (flag == FTW_DP) ? rmdir(path) : unlink(path);
}


/* text into <dir>/rel, creating the stage folder it is in */
static void
check_pipeline_write(const char *rel, const char *text)
{
    check_pipeline_write_n(rel, text, strlen(text));
}


static void
check_pipeline_write_n(const char *rel, const char *text, size_t len)
{
    char   path[PATH_MAX];
    char  *slash;
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", check_pipeline_dir, rel);

    slash = strrchr(path, '/');
    *slash = '\0';
    ck_assert_msg(mkdir(path, 0700) == 0 || errno == EEXIST,
                  "mkdir %s: %s", path, strerror(errno));
    *slash = '/';

    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}


static void
check_pipeline_valid(void)
{
    check_pipeline_write("stages.json",
        "[\"new_account\", \"lead\", \"closed\"]\n");

    check_pipeline_write("new_account/substages.json",
        "[\n"
        "  {\"status\": \"created\", \"description\": \"Not reviewed.\",\n"
        "   \"score\": 5, \"notes\": \"\"},\n"
        "  {\"notes\": \"Call them.\\n\\tThen log it.\", \"score\": 10,\n"
        "   \"description\": \"An owner \xc3\xa9tudie it.\",\n"
        "   \"status\": \"assigned\"}\n"
        "]\n");

    check_pipeline_write("lead/substages.json",
        "[" CHECK_PIPELINE_GOOD ",\n"
        " {\"status\": \"qualified\", \"description\": \"Fit confirmed.\",\n"
        "  \"score\": 40, \"notes\": \"Book the demo.\"},\n"
        " {\"status\": \"disqualified\", \"description\": \"Not a fit.\",\n"
        "  \"score\": 0, \"notes\": \"Record why.\"}]");

    check_pipeline_write("closed/substages.json",
        "[{\"status\": \"won\", \"description\": \"Paying.\", "
        "\"score\": 100, \"notes\": \"\"},"
        " {\"status\": \"lost\", \"description\": \"Went elsewhere.\", "
        "\"score\": 0, \"notes\": \"\"}]");
}


/* loading fails with "<dir>/<rel>: <what>" and leaves nothing behind */
static void
check_pipeline_refused(const char *rel, const char *fmt, ...)
{
    char             what[256], want[PATH_MAX + 256];
    va_list          args;
    crm_error_t      err;
    crm_pipeline_t  *p;

    va_start(args, fmt);
    vsnprintf(what, sizeof(what), fmt, args);
    va_end(args);

    snprintf(want, sizeof(want), "%s/%s: %s", check_pipeline_dir, rel, what);

    p = (crm_pipeline_t *) &err;

    ck_assert_int_eq(crm_pipeline_load(check_pipeline_dir, &p, &err),
                     CRM_E_INVALID);
    ck_assert_ptr_null(p);
    crm_check_error(&err, CRM_E_INVALID, "", want);
}


/* lead/substages.json holding a good substage, then elem at [1] */
static void
check_pipeline_substages_refused(const char *elem, const char *what)
{
    char  text[8192];

    snprintf(text, sizeof(text), "[" CHECK_PIPELINE_GOOD ", %s]", elem);

    check_pipeline_valid();
    check_pipeline_write("lead/substages.json", text);
    check_pipeline_refused("lead/substages.json", "%s", what);
}


/* unit n times, malloc'd */
static char *
check_pipeline_repeat(const char *unit, size_t n)
{
    char    *s;
    size_t   i, len;

    len = strlen(unit);

    s = malloc(len * n + 1);
    ck_assert_ptr_nonnull(s);

    for (i = 0; i < n; i++) {
        memcpy(s + i * len, unit, len);
    }

    s[len * n] = '\0';

    return s;
}


START_TEST(test_pipeline_loads)
{
    crm_error_t            err;
    crm_pipeline_t        *p;
    const crm_stage_t     *stage;
    const crm_substage_t  *sub;

    check_pipeline_valid();

    ck_assert_int_eq(crm_pipeline_load(check_pipeline_dir, &p, &err),
                     CRM_OK);
    ck_assert_ptr_nonnull(p);

    ck_assert_uint_eq(p->nstages, 3);
    ck_assert_str_eq(p->stages[0].name, "new_account");
    ck_assert_str_eq(p->stages[1].name, "lead");
    ck_assert_str_eq(p->stages[2].name, "closed");
    ck_assert_uint_eq(p->stages[0].position, 0);
    ck_assert_uint_eq(p->stages[1].position, 1);
    ck_assert_uint_eq(p->stages[2].position, 2);

    /* the file's order, whatever the order of the keys */
    stage = &p->stages[0];
    ck_assert_uint_eq(stage->nsubstages, 2);
    ck_assert_str_eq(stage->substages[0].status, "created");
    ck_assert_str_eq(stage->substages[0].description, "Not reviewed.");
    ck_assert_str_eq(stage->substages[0].notes, "");
    ck_assert_int_eq(stage->substages[0].score, 5);
    ck_assert_str_eq(stage->substages[1].status, "assigned");
    ck_assert_str_eq(stage->substages[1].description,
                     "An owner \xc3\xa9tudie it.");
    ck_assert_str_eq(stage->substages[1].notes,
                     "Call them.\n\tThen log it.");
    ck_assert_int_eq(stage->substages[1].score, 10);

    ck_assert_uint_eq(p->stages[1].nsubstages, 3);
    ck_assert_int_eq(p->stages[1].substages[0].score, 20);
    ck_assert_int_eq(p->stages[1].substages[1].score, 40);
    ck_assert_int_eq(p->stages[1].substages[2].score, 0);
    ck_assert_str_eq(p->stages[1].substages[2].notes, "Record why.");

    ck_assert_uint_eq(p->stages[2].nsubstages, 2);
    ck_assert_int_eq(p->stages[2].substages[0].score, 100);
    ck_assert_int_eq(p->stages[2].substages[1].score, 0);

    /* lookups: whole names only, case and all */
    stage = crm_pipeline_stage(p, crm_str_lit("lead"));
    ck_assert_ptr_eq(stage, &p->stages[1]);
    ck_assert_ptr_eq(crm_pipeline_stage(p, crm_str_lit("closed")),
                     &p->stages[2]);
    ck_assert_ptr_null(crm_pipeline_stage(p, crm_str_lit("lea")));
    ck_assert_ptr_null(crm_pipeline_stage(p, crm_str_lit("leads")));
    ck_assert_ptr_null(crm_pipeline_stage(p, crm_str_lit("Lead")));
    ck_assert_ptr_null(crm_pipeline_stage(p, crm_str_lit("")));
    ck_assert_ptr_null(crm_pipeline_stage(p, crm_str_lit("lead\0x")));
    ck_assert_ptr_eq(crm_pipeline_stage(p, (crm_str_t) { "leadx", 4 }),
                     &p->stages[1]);
    ck_assert_ptr_null(crm_pipeline_stage(NULL, crm_str_lit("lead")));

    sub = crm_pipeline_substage(stage, crm_str_lit("qualified"));
    ck_assert_ptr_eq(sub, &stage->substages[1]);
    ck_assert_int_eq(sub->score, 40);
    ck_assert_ptr_null(crm_pipeline_substage(stage, crm_str_lit("won")));
    ck_assert_ptr_null(crm_pipeline_substage(stage,
                                             crm_str_lit("qualifie")));
    ck_assert_ptr_null(crm_pipeline_substage(NULL, crm_str_lit("won")));

    crm_pipeline_free(p);
    crm_pipeline_free(NULL);
}
END_TEST


START_TEST(test_pipeline_dir_spelling)
{
    char             dir[PATH_MAX];
    crm_error_t      err;
    crm_pipeline_t  *p;

    check_pipeline_valid();

    /* a trailing slash is not doubled in the messages */
    snprintf(dir, sizeof(dir), "%s//", check_pipeline_dir);
    ck_assert_int_eq(crm_pipeline_load(dir, &p, &err), CRM_OK);
    ck_assert_uint_eq(p->nstages, 3);
    crm_pipeline_free(p);

    check_pipeline_write("lead/substages.json", "[]");
    ck_assert_int_eq(crm_pipeline_load(dir, &p, &err), CRM_E_INVALID);
    ck_assert_ptr_null(p);
    snprintf(dir, sizeof(dir),
             "%s/lead/substages.json: must list at least one substage",
             check_pipeline_dir);
    ck_assert_str_eq(err.message, dir);

    ck_assert_int_eq(crm_pipeline_load("", &p, &err), CRM_E_INVALID);
    ck_assert_ptr_null(p);
}
END_TEST


START_TEST(test_pipeline_stages_file)
{
    char  *big, text[256];

    check_pipeline_refused("stages.json",
                           "cannot open: No such file or directory");

    check_pipeline_valid();

    check_pipeline_write("stages.json", "{\"stages\": [\"lead\"]}");
    check_pipeline_refused("stages.json",
                           "must be a JSON array of stage names");

    check_pipeline_write("stages.json", "\"lead\"");
    check_pipeline_refused("stages.json",
                           "must be a JSON array of stage names");

    check_pipeline_write("stages.json", "[\"new_account\", \"lead\"");
    check_pipeline_refused("stages.json",
                           "invalid JSON: parse error: premature EOF");

    check_pipeline_write("stages.json", "[\"lead\"] /* the rest */");
    check_pipeline_refused("stages.json",
                           "invalid JSON: comments are not allowed in JSON");

    check_pipeline_write("stages.json", "[[[[[[[[[\"lead\"]]]]]]]]]");
    check_pipeline_refused("stages.json",
                           "invalid JSON: JSON nesting is deeper than 8");

    check_pipeline_write("stages.json", " \n");
    check_pipeline_refused("stages.json", "file is empty");

    check_pipeline_write_n("stages.json", "[\"lead\"]\0", 9);
    check_pipeline_refused("stages.json", "file contains a NUL byte");

    check_pipeline_write("stages.json", "[]");
    check_pipeline_refused("stages.json", "must list at least one stage");

    /* ["s","s",...,"s"]: counted before the duplicates are seen */
    big = check_pipeline_repeat(",\"s\"", 33);
    big[0] = '[';
    snprintf(text, sizeof(text), "%s]", big);
    check_pipeline_write("stages.json", text);
    free(big);
    check_pipeline_refused("stages.json", "must list at most 32 stages");

    /* 1 MiB is read; one byte more is not */
    big = check_pipeline_repeat(" ", 1024 * 1024);
    big[0] = '[';
    big[1] = ']';
    check_pipeline_write("stages.json", big);
    free(big);
    check_pipeline_refused("stages.json", "must list at least one stage");

    big = check_pipeline_repeat(" ", 1024 * 1024 + 1);
    big[0] = '[';
    big[1] = ']';
    check_pipeline_write("stages.json", big);
    free(big);
    check_pipeline_refused("stages.json",
                           "file is larger than 1048576 bytes");
}
END_TEST


START_TEST(test_pipeline_stages_not_a_file)
{
    char  path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/stages.json", check_pipeline_dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);

    check_pipeline_refused("stages.json", "not a regular file");
}
END_TEST


START_TEST(test_pipeline_stage_names)
{
    char  *name, text[128];

    check_pipeline_valid();

    check_pipeline_write("stages.json",
                         "[\"new_account\", \"lead\", \"lead\", \"closed\"]");
    check_pipeline_refused("stages.json", "[2]: duplicate stage \"lead\"");

    check_pipeline_write("stages.json", "[\"new_account\", 2]");
    check_pipeline_refused("stages.json", "[1]: must be a string");

    check_pipeline_write("stages.json", "[\"new_account\", null]");
    check_pipeline_refused("stages.json", "[1]: must be a string");

#define check_pipeline_bad_stage(json)                                       \
    check_pipeline_write("stages.json", "[\"new_account\", " json "]");       \
    check_pipeline_refused("stages.json",                                     \
                           "[1]: must be 1 to 32 lower-case letters, "        \
                           "digits or underscores, starting with a letter")

    check_pipeline_bad_stage("\"Lead\"");
    check_pipeline_bad_stage("\"2nd_call\"");
    check_pipeline_bad_stage("\"_lead\"");
    check_pipeline_bad_stage("\"lead-in\"");
    check_pipeline_bad_stage("\"lead in\"");
    check_pipeline_bad_stage("\"\"");
    check_pipeline_bad_stage("\"..\"");
    check_pipeline_bad_stage("\"../lead\"");
    check_pipeline_bad_stage("\"lead/x\"");
    check_pipeline_bad_stage("\"l\xc3\xa9\x61\x64\"");

#undef check_pipeline_bad_stage

    check_pipeline_write("stages.json", "[\"new_account\", \"le\\tad\"]");
    check_pipeline_refused("stages.json",
                           "[1]: must not contain control characters");

    /* 32 characters are a name, 33 are not */
    name = check_pipeline_repeat("a", 32);
    snprintf(text, sizeof(text), "[\"%s\"]", name);
    check_pipeline_write("stages.json", text);
    check_pipeline_refused("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/substages.json",
                           "cannot open: No such file or directory");
    free(name);

    name = check_pipeline_repeat("a", 33);
    snprintf(text, sizeof(text), "[\"%s\"]", name);
    check_pipeline_write("stages.json", text);
    check_pipeline_refused("stages.json",
                           "[0]: must be 1 to 32 lower-case letters, "
                           "digits or underscores, starting with a letter");
    free(name);
}
END_TEST


START_TEST(test_pipeline_substages_file)
{
    char  path[PATH_MAX];

    check_pipeline_valid();

    /* no folder for a stage, then a folder without the file */
    check_pipeline_write("stages.json",
                         "[\"new_account\", \"lead\", \"demo\", \"closed\"]");
    check_pipeline_refused("demo/substages.json",
                           "cannot open: No such file or directory");

    snprintf(path, sizeof(path), "%s/demo", check_pipeline_dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    check_pipeline_refused("demo/substages.json",
                           "cannot open: No such file or directory");

    check_pipeline_valid();

    check_pipeline_write("lead/substages.json",
                         "{\"status\": \"contacted\"}");
    check_pipeline_refused("lead/substages.json",
                           "must be a JSON array of substages");

    check_pipeline_write("lead/substages.json", "[{\"status\": ");
    check_pipeline_refused("lead/substages.json",
                           "invalid JSON: parse error: premature EOF");

    check_pipeline_write("lead/substages.json", "[]");
    check_pipeline_refused("lead/substages.json",
                           "must list at least one substage");

    check_pipeline_write("closed/substages.json", "");
    check_pipeline_refused("lead/substages.json",
                           "must list at least one substage");

    check_pipeline_valid();
    check_pipeline_write("closed/substages.json", "");
    check_pipeline_refused("closed/substages.json", "file is empty");
}
END_TEST


START_TEST(test_pipeline_substages_max)
{
    char            *text, *end, *last;
    size_t           i;
    crm_error_t      err;
    crm_pipeline_t  *p;

    text = malloc(65 * 128);
    ck_assert_ptr_nonnull(text);

    last = text;

    for (i = 0, end = text; i < 65; i++) {
        last = end;
        end += sprintf(end, "%c{\"status\": \"s%zu\", \"description\": "
                       "\"d\", \"score\": 1, \"notes\": \"\"}",
                       i ? ',' : '[', i);
    }

    strcpy(end, "]");

    check_pipeline_valid();
    check_pipeline_write("lead/substages.json", text);
    check_pipeline_refused("lead/substages.json",
                           "must list at most 64 substages");

    /* without the last one, 64 load */
    strcpy(last, "]");
    check_pipeline_write("lead/substages.json", text);
    free(text);

    ck_assert_msg(crm_pipeline_load(check_pipeline_dir, &p, &err) == CRM_OK,
                  "%s", err.message);
    ck_assert_uint_eq(p->stages[1].nsubstages, 64);
    ck_assert_str_eq(p->stages[1].substages[63].status, "s63");
    crm_pipeline_free(p);
}
END_TEST


START_TEST(test_pipeline_substage_status)
{
    crm_error_t      err;
    crm_pipeline_t  *p;

    check_pipeline_substages_refused(
        "{\"status\": \"contacted\", \"description\": \"Again.\", "
        "\"score\": 25, \"notes\": \"\"}",
        "[1].status: duplicate status \"contacted\"");

    check_pipeline_substages_refused(
        "{\"status\": \"Qualified\", \"description\": \"d\", "
        "\"score\": 25, \"notes\": \"\"}",
        "[1].status: must be 1 to 64 lower-case letters, digits or "
        "underscores, starting with a letter");

    check_pipeline_substages_refused(
        "{\"status\": \"\", \"description\": \"d\", "
        "\"score\": 25, \"notes\": \"\"}",
        "[1].status: must be 1 to 64 lower-case letters, digits or "
        "underscores, starting with a letter");

    check_pipeline_substages_refused(
        "{\"status\": \"qualified\\u0001\", \"description\": \"d\", "
        "\"score\": 25, \"notes\": \"\"}",
        "[1].status: must not contain control characters");

    check_pipeline_substages_refused(
        "{\"status\": \"qualified\\n\", \"description\": \"d\", "
        "\"score\": 25, \"notes\": \"\"}",
        "[1].status: must not contain control characters");

    check_pipeline_substages_refused(
        "{\"status\": 7, \"description\": \"d\", "
        "\"score\": 25, \"notes\": \"\"}",
        "[1].status: must be a string");

    /* the same status in another stage is fine: it is per stage */
    check_pipeline_valid();
    check_pipeline_write("closed/substages.json",
                         "[" CHECK_PIPELINE_GOOD "]");
    check_pipeline_write("stages.json", "[\"lead\", \"closed\"]");

    ck_assert_int_eq(crm_pipeline_load(check_pipeline_dir, &p, &err),
                     CRM_OK);
    crm_pipeline_free(p);
}
END_TEST


START_TEST(test_pipeline_substage_score)
{
    static const char  *bad[] = {
        "-1", "101", "50.5", "\"50\"", "50.0", "5e1", "null", "true",
        "[50]", "99999999999999999999"
    };

    char    elem[256];
    size_t  i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(elem, sizeof(elem),
                 "{\"status\": \"qualified\", \"description\": \"d\", "
                 "\"score\": %s, \"notes\": \"\"}", bad[i]);

        check_pipeline_substages_refused(elem,
            "[1].score: must be an integer between 0 and 100");
    }
}
END_TEST


START_TEST(test_pipeline_substage_fields)
{
    check_pipeline_substages_refused(
        "{\"status\": \"qualified\", \"description\": \"d\", "
        "\"score\": 25}",
        "[1].notes: is required");

    check_pipeline_substages_refused(
        "{\"description\": \"d\", \"score\": 25, \"notes\": \"\"}",
        "[1].status: is required");

    check_pipeline_substages_refused("{}", "[1].status: is required");

    check_pipeline_substages_refused(
        "{\"status\": \"qualified\", \"description\": \"d\", "
        "\"score\": 25, \"notes\": \"\", \"owner\": \"ana\"}",
        "[1].owner: unknown field");

    check_pipeline_substages_refused(
        "{\"status\": \"qualified\", \"Score\": 25, \"description\": \"d\", "
        "\"score\": 25, \"notes\": \"\"}",
        "[1].Score: unknown field");

    /* an unknown key is echoed as printable ASCII only */
    check_pipeline_substages_refused(
        "{\"sc\\u00f6re\": 25}", "[1].sc??re: unknown field");

    check_pipeline_substages_refused(
        "{\"status\": \"qualified\", \"description\": \"d\", "
        "\"score\": 25, \"notes\": \"\", \"score\": 30}",
        "[1].score: duplicate field");

    check_pipeline_substages_refused(
        "[\"qualified\", \"d\", 25, \"\"]",
        "[1]: must be an object with \"status\", \"description\", "
        "\"score\", \"notes\" and optionally \"outcome\"");

    check_pipeline_substages_refused(
        "\"qualified\"",
        "[1]: must be an object with \"status\", \"description\", "
        "\"score\", \"notes\" and optionally \"outcome\"");

    check_pipeline_substages_refused(
        "{\"status\": \"qualified\", \"description\": null, "
        "\"score\": 25, \"notes\": \"\"}",
        "[1].description: must be a string");

    check_pipeline_substages_refused(
        "{\"status\": \"qualified\", \"description\": \"d\", "
        "\"score\": 25, \"notes\": 1}",
        "[1].notes: must be a string");
}
END_TEST


START_TEST(test_pipeline_substage_text)
{
    char             *text, *elem;
    crm_error_t       err;
    crm_pipeline_t   *p;

    elem = malloc(16384);
    ck_assert_ptr_nonnull(elem);

    check_pipeline_substages_refused(
        "{\"status\": \"qualified\", \"description\": \"\", "
        "\"score\": 25, \"notes\": \"\"}",
        "[1].description: must be between 1 and 2000 characters");

    /* 2000 characters, in 4000 bytes, are fine */
    text = check_pipeline_repeat("\xc3\xa9", 2000);
    snprintf(elem, 16384,
             "[" CHECK_PIPELINE_GOOD ", {\"status\": \"qualified\", "
             "\"description\": \"%s\", \"score\": 25, \"notes\": \"%s\"}]",
             text, text);
    check_pipeline_valid();
    check_pipeline_write("lead/substages.json", elem);
    ck_assert_int_eq(crm_pipeline_load(check_pipeline_dir, &p, &err),
                     CRM_OK);
    ck_assert_uint_eq(strlen(p->stages[1].substages[1].description), 4000);
    crm_pipeline_free(p);
    free(text);

    text = check_pipeline_repeat("a", 2001);

    snprintf(elem, 16384,
             "{\"status\": \"qualified\", \"description\": \"%s\", "
             "\"score\": 25, \"notes\": \"\"}", text);
    check_pipeline_substages_refused(elem,
        "[1].description: must be between 1 and 2000 characters");

    snprintf(elem, 16384,
             "{\"status\": \"qualified\", \"description\": \"d\", "
             "\"score\": 25, \"notes\": \"%s\"}", text);
    check_pipeline_substages_refused(elem,
        "[1].notes: must be at most 2000 characters");

    free(text);
    free(elem);

    /* tab and newline are text; other control characters are not */
    check_pipeline_substages_refused(
        "{\"status\": \"qualified\", \"description\": \"ring\\u0007\", "
        "\"score\": 25, \"notes\": \"\"}",
        "[1].description: must not contain control characters");

    check_pipeline_substages_refused(
        "{\"status\": \"qualified\", \"description\": \"d\", "
        "\"score\": 25, \"notes\": \"a\\r\\nb\"}",
        "[1].notes: must not contain control characters");

    check_pipeline_substages_refused(
        "{\"status\": \"qualified\", \"description\": \"d\", "
        "\"score\": 25, \"notes\": \"\\u001b[31mred\"}",
        "[1].notes: must not contain control characters");

    check_pipeline_substages_refused(
        "{\"status\": \"qualified\", \"description\": \"d\", "
        "\"score\": 25, \"notes\": \"a\\u0000b\"}",
        "invalid JSON: \\u0000 is not allowed in strings");
}
END_TEST


/* the pipeline we ship loads, in the documented order */
START_TEST(test_pipeline_shipped)
{
    size_t                 i, j;
    crm_error_t            err;
    crm_pipeline_t        *p;
    const crm_stage_t     *stage;
    const crm_substage_t  *sub;

    static const char  *order[] = {
        "new_account", "lead", "demo", "proposal", "contract", "approval",
        "customer", "closed"
    };

    ck_assert_msg(crm_pipeline_load("pipeline-config", &p, &err) == CRM_OK,
                  "%s", err.message);

    ck_assert_uint_eq(p->nstages, 8);

    for (i = 0; i < 8; i++) {
        stage = &p->stages[i];

        ck_assert_str_eq(stage->name, order[i]);
        ck_assert_uint_eq(stage->position, i);
        ck_assert_ptr_eq(crm_pipeline_stage(p, crm_str_c(order[i])), stage);

        ck_assert_msg(stage->nsubstages >= 3 && stage->nsubstages <= 6,
                      "%s has %zu substages", stage->name,
                      stage->nsubstages);

        for (j = 0; j < stage->nsubstages; j++) {
            ck_assert_msg(strlen(stage->substages[j].notes) > 0,
                          "%s/%s has no notes", stage->name,
                          stage->substages[j].status);
        }
    }

    /* the default for a new lead */
    ck_assert_str_eq(p->stages[0].substages[0].status, "created");

    stage = crm_pipeline_stage(p, crm_str_lit("closed"));
    sub = crm_pipeline_substage(stage, crm_str_lit("won"));
    ck_assert_ptr_nonnull(sub);
    ck_assert_int_eq(sub->score, 100);
    ck_assert_int_eq(sub->outcome, CRM_OUTCOME_WON);
    sub = crm_pipeline_substage(stage, crm_str_lit("lost"));
    ck_assert_ptr_nonnull(sub);
    ck_assert_int_eq(sub->score, 0);
    ck_assert_int_eq(sub->outcome, CRM_OUTCOME_LOST);
    sub = crm_pipeline_substage(stage, crm_str_lit("no_decision"));
    ck_assert_int_eq(sub->outcome, CRM_OUTCOME_LOST);

    /* where app/uninstalled sends a shop's lead */
    ck_assert_ptr_eq(p->churn_stage, stage);
    ck_assert_str_eq(p->churn->status, "churned");
    ck_assert_str_eq(crm_outcome_name(p->churn->outcome), "churned");

    /* the compatibility parts, in the file's order */
    ck_assert_uint_eq(p->nparts, 6);
    ck_assert_str_eq(crm_compat_name(p->parts[0].kind), "stage");
    ck_assert_int_eq(p->parts[0].weight, 30);
    ck_assert_str_eq(crm_compat_name(p->parts[5].kind), "recency");
    ck_assert_int_eq(p->parts[5].weight, 10);

    for (i = 0; i < 8; i++) {
        for (j = 0; j < p->stages[i].nsubstages; j++) {
            ck_assert(i == 7
                      || p->stages[i].substages[j].outcome
                         == CRM_OUTCOME_NONE);
        }
    }
    sub = crm_pipeline_substage(stage, crm_str_lit("churned"));
    ck_assert_ptr_nonnull(sub);
    ck_assert_int_eq(sub->score, 0);

    crm_pipeline_free(p);
}
END_TEST


START_TEST(test_pipeline_name_valid)
{
    ck_assert(crm_pipeline_name_valid(crm_str_lit("lead"), 32));
    ck_assert(crm_pipeline_name_valid(crm_str_lit("new_account2"), 32));
    ck_assert(crm_pipeline_name_valid(crm_str_lit("a"), 1));

    ck_assert(!crm_pipeline_name_valid(crm_str_lit(""), 32));
    ck_assert(!crm_pipeline_name_valid(crm_str_lit("2lead"), 32));
    ck_assert(!crm_pipeline_name_valid(crm_str_lit("_lead"), 32));
    ck_assert(!crm_pipeline_name_valid(crm_str_lit("Lead"), 32));
    ck_assert(!crm_pipeline_name_valid(crm_str_lit("le-ad"), 32));
    ck_assert(!crm_pipeline_name_valid(crm_str_lit("../demo"), 32));
    ck_assert(!crm_pipeline_name_valid(crm_str_lit("ab"), 1));
}
END_TEST


static Suite *
check_pipeline_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("pipeline", &tc);

    tcase_add_checked_fixture(tc, check_pipeline_setup,
                              check_pipeline_teardown);

    tcase_add_test(tc, test_pipeline_name_valid);
    tcase_add_test(tc, test_pipeline_loads);
    tcase_add_test(tc, test_pipeline_dir_spelling);
    tcase_add_test(tc, test_pipeline_stages_file);
    tcase_add_test(tc, test_pipeline_stages_not_a_file);
    tcase_add_test(tc, test_pipeline_stage_names);
    tcase_add_test(tc, test_pipeline_substages_file);
    tcase_add_test(tc, test_pipeline_substages_max);
    tcase_add_test(tc, test_pipeline_substage_status);
    tcase_add_test(tc, test_pipeline_substage_score);
    tcase_add_test(tc, test_pipeline_substage_fields);
    tcase_add_test(tc, test_pipeline_substage_text);
    tcase_add_test(tc, test_pipeline_shipped);

    return s;
}


CRM_CHECK_MAIN(check_pipeline_suite)
