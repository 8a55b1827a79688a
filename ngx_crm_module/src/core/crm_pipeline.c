/*
 * The sales pipeline, loaded from its folder.
 *
 * An operator edits these files by hand and finds out about a mistake from
 * "nginx -t", so every refusal names the file and the element in it, as a
 * JSON path from the top of that file: "[2].score", counted from 0.  The
 * loader stops at the first mistake: one clear message beats a list.
 *
 * Everything is malloc'd and reached from the crm_pipeline_t, so a half
 * built pipeline is released by crm_pipeline_free() like a whole one.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crm_json.h"
#include "crm_pipeline.h"
#include "crm_validate.h"


/* far more than any hand-written pipeline, far less than a worry */
#define CRM_PIPELINE_FILE_MAX   (1024 * 1024)
#define CRM_PIPELINE_DEPTH_MAX  8


typedef enum {
    CRM_SUBSTAGE_STATUS = 0,
    CRM_SUBSTAGE_DESCRIPTION,
    CRM_SUBSTAGE_SCORE,
    CRM_SUBSTAGE_NOTES,
    CRM_SUBSTAGE_OUTCOME,               /* the only optional field */
    CRM_SUBSTAGE_NFIELDS
} crm_substage_field_e;


static crm_status_e crm_pipeline_load_stages(crm_pipeline_t *p,
    const char *dir, const char *file, yajl_val root, crm_error_t *err);
static crm_status_e crm_pipeline_load_stage(crm_pipeline_t *p, size_t i,
    const char *dir, const char *file, yajl_val val, crm_error_t *err);
static crm_status_e crm_pipeline_load_substages(crm_stage_t *stage,
    const char *file, yajl_val root, crm_error_t *err);
static crm_status_e crm_pipeline_load_substage(crm_stage_t *stage,
    size_t i, const char *file, yajl_val val, crm_error_t *err);
static crm_status_e crm_pipeline_substage_field(crm_stage_t *stage,
    size_t i, crm_substage_field_e f, const char *file, yajl_val val,
    crm_error_t *err);
static crm_status_e crm_pipeline_check(crm_pipeline_t *p, const char *dir,
    crm_error_t *err);
static crm_status_e crm_pipeline_load_compat(crm_pipeline_t *p,
    const char *file, yajl_val root, crm_error_t *err);
static crm_status_e crm_pipeline_load_part(crm_pipeline_t *p, size_t i,
    const char *file, yajl_val val, crm_error_t *err);
static crm_status_e crm_pipeline_read_json(const char *file, yajl_val *root,
    crm_error_t *err);
static crm_status_e crm_pipeline_read_file(const char *file, char **buf,
    size_t *len, crm_error_t *err);
static crm_status_e crm_pipeline_name_check(const char *name, size_t max,
    const char *file, const char *elem, crm_error_t *err);
static int crm_pipeline_path(char *buf, size_t size, const char *dir,
    const char *stage, const char *name);
static char *crm_pipeline_strdup(const char *s, const char *file,
    crm_error_t *err);
static crm_status_e crm_pipeline_error(crm_error_t *err, crm_status_e code,
    const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));


static const char  *crm_substage_fields[CRM_SUBSTAGE_NFIELDS] = {
    [CRM_SUBSTAGE_STATUS]      = "status",
    [CRM_SUBSTAGE_DESCRIPTION] = "description",
    [CRM_SUBSTAGE_SCORE]       = "score",
    [CRM_SUBSTAGE_NOTES]       = "notes",
    [CRM_SUBSTAGE_OUTCOME]     = "outcome"
};

static const char  *crm_outcome_names[] = {
    [CRM_OUTCOME_NONE]    = NULL,
    [CRM_OUTCOME_WON]     = "won",
    [CRM_OUTCOME_LOST]    = "lost",
    [CRM_OUTCOME_CHURNED] = "churned"
};

static const char  *crm_compat_names[CRM_COMPAT_NKINDS] = {
    [CRM_COMPAT_STAGE]     = "stage",
    [CRM_COMPAT_SCORE]     = "score",
    [CRM_COMPAT_CONTACT]   = "contact",
    [CRM_COMPAT_COMPANY]   = "company",
    [CRM_COMPAT_AFFILIATE] = "affiliate",
    [CRM_COMPAT_RECENCY]   = "recency"
};

/* without a compatibility.json: what the shipped one says */
static const crm_compat_part_t  crm_compat_default[] = {
    { CRM_COMPAT_STAGE, 30 },
    { CRM_COMPAT_SCORE, 25 },
    { CRM_COMPAT_CONTACT, 15 },
    { CRM_COMPAT_COMPANY, 10 },
    { CRM_COMPAT_AFFILIATE, 10 },
    { CRM_COMPAT_RECENCY, 10 }
};


crm_status_e
crm_pipeline_load(const char *dir, crm_pipeline_t **out, crm_error_t *err)
{
    char             file[PATH_MAX];
    yajl_val         root;
    crm_status_e     rc;
    crm_pipeline_t  *p;

    *out = NULL;

    if (dir[0] == '\0') {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "the pipeline directory name is empty");
    }

    if (crm_pipeline_path(file, sizeof(file), dir, NULL, "stages.json")
        != 0)
    {
        return crm_pipeline_error(err, CRM_E_INVALID, dir,
                                  "path is too long");
    }

    p = calloc(1, sizeof(crm_pipeline_t));
    if (p == NULL) {
        return crm_pipeline_error(err, CRM_E_INTERNAL, file,
                                  "out of memory");
    }

    rc = crm_pipeline_read_json(file, &root, err);
    if (rc != CRM_OK) {
        goto failed;
    }

    rc = crm_pipeline_load_stages(p, dir, file, root, err);

    yajl_tree_free(root);

    if (rc != CRM_OK) {
        goto failed;
    }

    rc = crm_pipeline_check(p, dir, err);
    if (rc != CRM_OK) {
        goto failed;
    }

    *out = p;

    return CRM_OK;

failed:

    crm_pipeline_free(p);

    return rc;
}


void
crm_pipeline_free(crm_pipeline_t *p)
{
    size_t           i, j;
    crm_stage_t     *stage;
    crm_substage_t  *sub;

    if (p == NULL) {
        return;
    }

    for (i = 0; i < p->nstages; i++) {
        stage = &p->stages[i];

        for (j = 0; j < stage->nsubstages; j++) {
            sub = &stage->substages[j];

            free(sub->status);
            free(sub->description);
            free(sub->notes);
        }

        free(stage->substages);
        free(stage->name);
    }

    free(p->stages);
    free(p);
}


const char *
crm_outcome_name(crm_outcome_e outcome)
{
    return crm_outcome_names[outcome];
}


const char *
crm_compat_name(crm_compat_kind_e kind)
{
    return crm_compat_names[kind];
}


/*
 * What holds across files: where new leads start, where churned ones go,
 * and the compatibility parts (compatibility.json, else the defaults)
 */
static crm_status_e
crm_pipeline_check(crm_pipeline_t *p, const char *dir, crm_error_t *err)
{
    char                   file[PATH_MAX];
    size_t                 i, j;
    yajl_val               root;
    struct stat            st;
    crm_status_e           rc;
    const crm_stage_t     *stage;

    if (p->stages[0].substages[0].outcome != CRM_OUTCOME_NONE) {
        (void) crm_pipeline_path(file, sizeof(file), dir, p->stages[0].name,
                                 "substages.json");
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "[0].outcome: the first substage of the "
                                  "first stage is where new leads start and "
                                  "cannot end a deal");
    }

    for (i = 0; i < p->nstages && p->churn == NULL; i++) {
        stage = &p->stages[i];

        for (j = 0; j < stage->nsubstages; j++) {
            if (stage->substages[j].outcome == CRM_OUTCOME_CHURNED) {
                p->churn_stage = stage;
                p->churn = &stage->substages[j];
                break;
            }
        }
    }

    if (crm_pipeline_path(file, sizeof(file), dir, NULL,
                          "compatibility.json") != 0)
    {
        return crm_pipeline_error(err, CRM_E_INVALID, dir,
                                  "path is too long");
    }

    if (stat(file, &st) != 0 && errno == ENOENT) {
        p->nparts = sizeof(crm_compat_default) / sizeof(crm_compat_part_t);
        memcpy(p->parts, crm_compat_default, sizeof(crm_compat_default));
        return CRM_OK;
    }

    rc = crm_pipeline_read_json(file, &root, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_pipeline_load_compat(p, file, root, err);

    yajl_tree_free(root);

    return rc;
}


static crm_status_e
crm_pipeline_load_compat(crm_pipeline_t *p, const char *file, yajl_val root,
    crm_error_t *err)
{
    int           sum;
    size_t        i, n;
    yajl_val      parts;
    crm_status_e  rc;

    if (!YAJL_IS_OBJECT(root) || root->u.object.len != 1
        || strcmp(root->u.object.keys[0], "parts") != 0)
    {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "must be an object with \"parts\" only");
    }

    parts = root->u.object.values[0];

    if (!YAJL_IS_ARRAY(parts) || parts->u.array.len == 0
        || parts->u.array.len > CRM_COMPAT_NKINDS)
    {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "parts: must be an array of 1 to %d parts",
                                  CRM_COMPAT_NKINDS);
    }

    n = parts->u.array.len;
    sum = 0;

    for (i = 0; i < n; i++) {
        rc = crm_pipeline_load_part(p, i, file, parts->u.array.values[i],
                                    err);
        if (rc != CRM_OK) {
            return rc;
        }

        sum += p->parts[i].weight;
    }

    if (sum != 100) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "parts: the weights sum to %d, not 100",
                                  sum);
    }

    return CRM_OK;
}


static crm_status_e
crm_pipeline_load_part(crm_pipeline_t *p, size_t i, const char *file,
    yajl_val val, crm_error_t *err)
{
    size_t       j, k;
    yajl_val     name, weight;
    const char  *key;

    name = NULL;
    weight = NULL;

    if (!YAJL_IS_OBJECT(val)) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "parts[%zu]: must be an object with "
                                  "\"name\" and \"weight\"", i);
    }

    for (j = 0; j < val->u.object.len; j++) {
        key = val->u.object.keys[j];

        if (strcmp(key, "name") == 0 && name == NULL) {
            name = val->u.object.values[j];

        } else if (strcmp(key, "weight") == 0 && weight == NULL) {
            weight = val->u.object.values[j];

        } else {
            return crm_pipeline_error(err, CRM_E_INVALID, file,
                                      "parts[%zu]: must have \"name\" and "
                                      "\"weight\" once each, nothing else",
                                      i);
        }
    }

    for (k = 0; k < CRM_COMPAT_NKINDS; k++) {
        if (YAJL_IS_STRING(name)
            && strcmp(name->u.string, crm_compat_names[k]) == 0)
        {
            break;
        }
    }

    if (k == CRM_COMPAT_NKINDS) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "parts[%zu].name: must be one of stage, "
                                  "score, contact, company, affiliate, "
                                  "recency", i);
    }

    for (j = 0; j < i; j++) {
        if (p->parts[j].kind == (crm_compat_kind_e) k) {
            return crm_pipeline_error(err, CRM_E_INVALID, file,
                                      "parts[%zu].name: duplicate part "
                                      "\"%s\"", i, crm_compat_names[k]);
        }
    }

    if (weight == NULL || !YAJL_IS_INTEGER(weight)
        || YAJL_GET_INTEGER(weight) < 1 || YAJL_GET_INTEGER(weight) > 100)
    {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "parts[%zu].weight: must be an integer "
                                  "between 1 and 100", i);
    }

    p->parts[i].kind = (crm_compat_kind_e) k;
    p->parts[i].weight = (int) YAJL_GET_INTEGER(weight);
    p->nparts = i + 1;

    return CRM_OK;
}


const crm_stage_t *
crm_pipeline_stage(const crm_pipeline_t *p, crm_str_t name)
{
    size_t  i;

    if (p == NULL) {
        return NULL;
    }

    for (i = 0; i < p->nstages; i++) {
        if (crm_str_eq(name, p->stages[i].name)) {
            return &p->stages[i];
        }
    }

    return NULL;
}


const crm_substage_t *
crm_pipeline_substage(const crm_stage_t *stage, crm_str_t status)
{
    size_t  i;

    if (stage == NULL) {
        return NULL;
    }

    for (i = 0; i < stage->nsubstages; i++) {
        if (crm_str_eq(status, stage->substages[i].status)) {
            return &stage->substages[i];
        }
    }

    return NULL;
}


static crm_status_e
crm_pipeline_load_stages(crm_pipeline_t *p, const char *dir,
    const char *file, yajl_val root, crm_error_t *err)
{
    size_t        i, n;
    crm_status_e  rc;

    if (!YAJL_IS_ARRAY(root)) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "must be a JSON array of stage names");
    }

    n = root->u.array.len;

    if (n == 0) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "must list at least one stage");
    }

    if (n > CRM_STAGES_MAX) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "must list at most %d stages",
                                  CRM_STAGES_MAX);
    }

    p->stages = calloc(n, sizeof(crm_stage_t));
    if (p->stages == NULL) {
        return crm_pipeline_error(err, CRM_E_INTERNAL, file,
                                  "out of memory");
    }

    /* counted before they are filled: crm_pipeline_free() skips NULLs */
    p->nstages = n;

    for (i = 0; i < n; i++) {
        rc = crm_pipeline_load_stage(p, i, dir, file, root->u.array.values[i],
                                     err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    return CRM_OK;
}


static crm_status_e
crm_pipeline_load_stage(crm_pipeline_t *p, size_t i, const char *dir,
    const char *file, yajl_val val, crm_error_t *err)
{
    char          elem[32];
    char          subfile[PATH_MAX];
    size_t        j;
    yajl_val      root;
    const char   *name;
    crm_status_e  rc;
    crm_stage_t  *stage;

    (void) snprintf(elem, sizeof(elem), "[%zu]", i);

    if (!YAJL_IS_STRING(val)) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "%s: must be a string", elem);
    }

    name = val->u.string;

    rc = crm_pipeline_name_check(name, CRM_STAGE_NAME_MAX, file, elem, err);
    if (rc != CRM_OK) {
        return rc;
    }

    for (j = 0; j < i; j++) {
        if (strcmp(p->stages[j].name, name) == 0) {
            return crm_pipeline_error(err, CRM_E_INVALID, file,
                                      "%s: duplicate stage \"%s\"",
                                      elem, name);
        }
    }

    stage = &p->stages[i];
    stage->position = (unsigned) i;

    stage->name = crm_pipeline_strdup(name, file, err);
    if (stage->name == NULL) {
        return CRM_E_INTERNAL;
    }

    /* the name checked above cannot be "..", hold a "/" or be empty */
    if (crm_pipeline_path(subfile, sizeof(subfile), dir, name,
                          "substages.json") != 0)
    {
        return crm_pipeline_error(err, CRM_E_INVALID, dir,
                                  "path is too long");
    }

    rc = crm_pipeline_read_json(subfile, &root, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_pipeline_load_substages(stage, subfile, root, err);

    yajl_tree_free(root);

    return rc;
}


static crm_status_e
crm_pipeline_load_substages(crm_stage_t *stage, const char *file,
    yajl_val root, crm_error_t *err)
{
    size_t        i, n;
    crm_status_e  rc;

    if (!YAJL_IS_ARRAY(root)) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "must be a JSON array of substages");
    }

    n = root->u.array.len;

    if (n == 0) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "must list at least one substage");
    }

    if (n > CRM_SUBSTAGES_MAX) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "must list at most %d substages",
                                  CRM_SUBSTAGES_MAX);
    }

    stage->substages = calloc(n, sizeof(crm_substage_t));
    if (stage->substages == NULL) {
        return crm_pipeline_error(err, CRM_E_INTERNAL, file,
                                  "out of memory");
    }

    stage->nsubstages = n;

    for (i = 0; i < n; i++) {
        rc = crm_pipeline_load_substage(stage, i, file,
                                        root->u.array.values[i], err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    return CRM_OK;
}


static crm_status_e
crm_pipeline_load_substage(crm_stage_t *stage, size_t i, const char *file,
    yajl_val val, crm_error_t *err)
{
    char          key[64];
    size_t        j;
    unsigned      f, seen;
    const char   *k;
    crm_status_e  rc;

    if (!YAJL_IS_OBJECT(val)) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "[%zu]: must be an object with \"status\", "
                                  "\"description\", \"score\", \"notes\" "
                                  "and optionally \"outcome\"", i);
    }

    seen = 0;

    for (j = 0; j < val->u.object.len; j++) {
        k = val->u.object.keys[j];

        for (f = 0; f < CRM_SUBSTAGE_NFIELDS; f++) {
            if (strcmp(k, crm_substage_fields[f]) == 0) {
                break;
            }
        }

        if (f == CRM_SUBSTAGE_NFIELDS) {
            /* the key is the editor's text: shown, but only as ASCII */
            (void) crm_text_printable(crm_str_c(k), key, sizeof(key));
            return crm_pipeline_error(err, CRM_E_INVALID, file,
                                      "[%zu].%s: unknown field", i, key);
        }

        /* yajl keeps both copies of a repeated key */
        if (seen & (1u << f)) {
            return crm_pipeline_error(err, CRM_E_INVALID, file,
                                      "[%zu].%s: duplicate field", i, k);
        }

        seen |= 1u << f;

        rc = crm_pipeline_substage_field(stage, i, (crm_substage_field_e) f,
                                         file, val->u.object.values[j], err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    for (j = 0; j < CRM_SUBSTAGE_OUTCOME; j++) {
        if (!(seen & (1u << j))) {
            return crm_pipeline_error(err, CRM_E_INVALID, file,
                                      "[%zu].%s: is required", i,
                                      crm_substage_fields[j]);
        }
    }

    return CRM_OK;
}


static crm_status_e
crm_pipeline_substage_field(crm_stage_t *stage, size_t i,
    crm_substage_field_e f, const char *file, yajl_val val, crm_error_t *err)
{
    char             elem[96];
    char           **dst;
    size_t           j, min;
    crm_error_t      text;
    const char      *s;
    crm_status_e     rc;
    crm_substage_t  *sub;

    sub = &stage->substages[i];

    (void) snprintf(elem, sizeof(elem), "[%zu].%s", i, crm_substage_fields[f]);

    if (f == CRM_SUBSTAGE_SCORE) {

        /* yajl marks 50.5, 5e1 and out-of-range numbers as not integral */
        if (!YAJL_IS_INTEGER(val)
            || YAJL_GET_INTEGER(val) < 0 || YAJL_GET_INTEGER(val) > 100)
        {
            return crm_pipeline_error(err, CRM_E_INVALID, file,
                                      "%s: must be an integer between 0 "
                                      "and 100", elem);
        }

        sub->score = (int) YAJL_GET_INTEGER(val);

        return CRM_OK;
    }

    if (f == CRM_SUBSTAGE_OUTCOME) {

        /* as GET /pipeline/stages shows an open substage */
        if (YAJL_IS_NULL(val)) {
            sub->outcome = CRM_OUTCOME_NONE;
            return CRM_OK;
        }

        for (j = CRM_OUTCOME_WON; j <= CRM_OUTCOME_CHURNED; j++) {
            if (YAJL_IS_STRING(val)
                && strcmp(val->u.string, crm_outcome_names[j]) == 0)
            {
                sub->outcome = (crm_outcome_e) j;
                return CRM_OK;
            }
        }

        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "%s: must be \"won\", \"lost\", "
                                  "\"churned\" or null", elem);
    }

    if (!YAJL_IS_STRING(val)) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "%s: must be a string", elem);
    }

    s = val->u.string;

    switch (f) {

    case CRM_SUBSTAGE_STATUS:
        rc = crm_pipeline_name_check(s, CRM_STATUS_MAX, file, elem, err);
        if (rc != CRM_OK) {
            return rc;
        }

        /* the earlier substages are complete: fields are set in order */
        for (j = 0; j < i; j++) {
            if (strcmp(stage->substages[j].status, s) == 0) {
                return crm_pipeline_error(err, CRM_E_INVALID, file,
                                          "%s: duplicate status \"%s\"",
                                          elem, s);
            }
        }

        dst = &sub->status;
        break;

    case CRM_SUBSTAGE_DESCRIPTION:
    case CRM_SUBSTAGE_NOTES:
        min = (f == CRM_SUBSTAGE_DESCRIPTION) ? 1 : 0;

        if (crm_text_check(crm_str_c(s), NULL, min, CRM_SUBSTAGE_TEXT_MAX, 1,
                           &text) != CRM_OK)
        {
            return crm_pipeline_error(err, CRM_E_INVALID, file, "%s: %s",
                                      elem, text.message);
        }

        dst = (f == CRM_SUBSTAGE_DESCRIPTION) ? &sub->description
                                              : &sub->notes;
        break;

    default:
        return crm_pipeline_error(err, CRM_E_INTERNAL, file,
                                  "%s: unexpected field", elem);
    }

    *dst = crm_pipeline_strdup(s, file, err);
    if (*dst == NULL) {
        return CRM_E_INTERNAL;
    }

    return CRM_OK;
}


int
crm_pipeline_name_valid(crm_str_t name, size_t max)
{
    size_t  i;

    if (name.len == 0 || name.len > max
        || name.data[0] < 'a' || name.data[0] > 'z')
    {
        return 0;
    }

    for (i = 1; i < name.len; i++) {
        if ((name.data[i] < 'a' || name.data[i] > 'z')
            && (name.data[i] < '0' || name.data[i] > '9')
            && name.data[i] != '_')
        {
            return 0;
        }
    }

    return 1;
}


/* stage names and statuses: [a-z][a-z0-9_]*, 1..max characters */
static crm_status_e
crm_pipeline_name_check(const char *name, size_t max, const char *file,
    const char *elem, crm_error_t *err)
{
    size_t       len;
    crm_error_t  text;

    len = strlen(name);

    /* a more precise message for what cannot be a name at all */
    if (crm_text_check((crm_str_t) { name, len }, NULL, 0, 0, 0, &text)
        != CRM_OK)
    {
        return crm_pipeline_error(err, CRM_E_INVALID, file, "%s: %s",
                                  elem, text.message);
    }

    if (crm_pipeline_name_valid((crm_str_t) { name, len }, max)) {
        return CRM_OK;
    }

    return crm_pipeline_error(err, CRM_E_INVALID, file,
                              "%s: must be 1 to %zu lower-case letters, "
                              "digits or underscores, starting with a letter",
                              elem, max);
}


static crm_status_e
crm_pipeline_read_json(const char *file, yajl_val *root, crm_error_t *err)
{
    char               *buf;
    size_t              len, i;
    crm_error_t         json;
    crm_status_e        rc;
    crm_json_limits_t   limits;

    *root = NULL;

    rc = crm_pipeline_read_file(file, &buf, &len, err);
    if (rc != CRM_OK) {
        return rc;
    }

    /*
     * crm_json_parse() words these two for a request body; a file gets
     * its own words
     */
    for (i = 0; i < len; i++) {
        if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n'
            && buf[i] != '\r')
        {
            break;
        }
    }

    if (i == len) {
        rc = crm_pipeline_error(err, CRM_E_INVALID, file, "file is empty");
        goto done;
    }

    if (memchr(buf, '\0', len) != NULL) {
        rc = crm_pipeline_error(err, CRM_E_INVALID, file,
                                "file contains a NUL byte");
        goto done;
    }

    limits.max_body = CRM_PIPELINE_FILE_MAX;
    limits.max_depth = CRM_PIPELINE_DEPTH_MAX;

    rc = crm_json_parse(buf, len, &limits, root, &json);

    if (rc == CRM_E_INTERNAL) {
        rc = crm_pipeline_error(err, CRM_E_INTERNAL, file, "out of memory");

    } else if (rc != CRM_OK) {
        rc = crm_pipeline_error(err, CRM_E_INVALID, file, "invalid JSON: %s",
                                json.message);
    }

done:

    free(buf);

    return rc;
}


/*
 * The whole file, up to CRM_PIPELINE_FILE_MAX bytes.  O_NONBLOCK keeps a
 * FIFO put there by mistake from hanging "nginx -t" in open(); it is
 * refused as not a regular file right after.
 */
static crm_status_e
crm_pipeline_read_file(const char *file, char **buf, size_t *len,
    crm_error_t *err)
{
    int           fd;
    char         *p;
    size_t        n;
    ssize_t       r;
    struct stat   st;
    crm_status_e  rc;

    *buf = NULL;
    *len = 0;
    p = NULL;

    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd == -1) {
        return crm_pipeline_error(err, CRM_E_INVALID, file,
                                  "cannot open: %s", strerror(errno));
    }

    if (fstat(fd, &st) == -1) {
        rc = crm_pipeline_error(err, CRM_E_INVALID, file,
                                "cannot stat: %s", strerror(errno));
        goto done;
    }

    if (!S_ISREG(st.st_mode)) {
        rc = crm_pipeline_error(err, CRM_E_INVALID, file,
                                "not a regular file");
        goto done;
    }

    if (st.st_size > CRM_PIPELINE_FILE_MAX) {
        goto too_large;
    }

    /* one byte more than allowed tells a file that grew since fstat() */
    p = malloc(CRM_PIPELINE_FILE_MAX + 1);
    if (p == NULL) {
        rc = crm_pipeline_error(err, CRM_E_INTERNAL, file, "out of memory");
        goto done;
    }

    n = 0;

    while (n < CRM_PIPELINE_FILE_MAX + 1) {
        r = read(fd, p + n, CRM_PIPELINE_FILE_MAX + 1 - n);

        if (r == -1) {
            if (errno == EINTR) {
                continue;
            }

            rc = crm_pipeline_error(err, CRM_E_INVALID, file,
                                    "cannot read: %s", strerror(errno));
            goto done;
        }

        if (r == 0) {
            break;
        }

        n += (size_t) r;
    }

    if (n > CRM_PIPELINE_FILE_MAX) {
        goto too_large;
    }

    *buf = p;
    *len = n;
    p = NULL;
    rc = CRM_OK;

    goto done;

too_large:

    rc = crm_pipeline_error(err, CRM_E_INVALID, file,
                            "file is larger than %d bytes",
                            CRM_PIPELINE_FILE_MAX);

done:

    free(p);
    (void) close(fd);

    return rc;
}


/*
 * dir/name or dir/stage/name into buf; a trailing "/" of dir is not
 * doubled, so "pipeline-config/" reads as well in messages as without
 */
static int
crm_pipeline_path(char *buf, size_t size, const char *dir, const char *stage,
    const char *name)
{
    int          n;
    size_t       len;
    const char  *sep;

    len = strlen(dir);

    while (len > 1 && dir[len - 1] == '/') {
        len--;
    }

    if (len > INT_MAX) {
        return -1;
    }

    sep = (dir[len - 1] == '/') ? "" : "/";

    if (stage != NULL) {
        n = snprintf(buf, size, "%.*s%s%s/%s", (int) len, dir, sep, stage,
                     name);

    } else {
        n = snprintf(buf, size, "%.*s%s%s", (int) len, dir, sep, name);
    }

    if (n < 0 || (size_t) n >= size) {
        return -1;
    }

    return 0;
}


static char *
crm_pipeline_strdup(const char *s, const char *file, crm_error_t *err)
{
    char  *p;

    p = strdup(s);
    if (p == NULL) {
        (void) crm_pipeline_error(err, CRM_E_INTERNAL, file,
                                  "out of memory");
    }

    return p;
}


/* "<file>: <what>": every message names its file first */
static crm_status_e
crm_pipeline_error(crm_error_t *err, crm_status_e code, const char *file,
    const char *fmt, ...)
{
    char     what[sizeof(err->message)];
    va_list  args;

    va_start(args, fmt);
    (void) vsnprintf(what, sizeof(what), fmt, args);
    va_end(args);

    return crm_error_set(err, code, NULL, "%s: %s", file, what);
}
