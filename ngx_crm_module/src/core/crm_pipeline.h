/*
 * The sales pipeline, read from a folder when nginx reads its
 * configuration:
 *
 *   <dir>/stages.json             ["new_account", "lead", ...] in order
 *   <dir>/<stage>/substages.json  [{"status", "description", "score",
 *                                   "notes", "outcome"?}, ...] in order
 *   <dir>/compatibility.json      {"parts": [{"name", "weight"}, ...]},
 *                                 optional (then crm_compat_default)
 *
 * Loading validates everything, so a bad edit fails "nginx -t" and the
 * reload with a message that names the file and the field, and the running
 * workers keep the pipeline they have.  A loaded pipeline is immutable and
 * shared by every thread of the worker.
 */

#ifndef CRM_PIPELINE_H
#define CRM_PIPELINE_H

#include "crm_error.h"
#include "crm_str.h"


#define CRM_STAGE_NAME_MAX      32      /* [a-z][a-z0-9_]* */
#define CRM_STATUS_MAX          64      /* [a-z][a-z0-9_]* */
#define CRM_STAGES_MAX          32
#define CRM_SUBSTAGES_MAX       64
#define CRM_SUBSTAGE_TEXT_MAX   2000    /* description, notes: characters */


/* how a deal ended, for a substage that ends one */
typedef enum {
    CRM_OUTCOME_NONE = 0,
    CRM_OUTCOME_WON,
    CRM_OUTCOME_LOST,
    CRM_OUTCOME_CHURNED
} crm_outcome_e;


/* the parts of a lead's compatibility score (crm_leads.h) */
typedef enum {
    CRM_COMPAT_STAGE = 0,
    CRM_COMPAT_SCORE,
    CRM_COMPAT_CONTACT,
    CRM_COMPAT_COMPANY,
    CRM_COMPAT_AFFILIATE,
    CRM_COMPAT_RECENCY,
    CRM_COMPAT_NKINDS
} crm_compat_kind_e;


typedef struct {
    crm_compat_kind_e  kind;
    int                weight;          /* 1..100; a pipeline's sum 100 */
} crm_compat_part_t;


typedef struct {
    char           *status;
    char           *description;
    char           *notes;
    int             score;              /* 0..100 */
    crm_outcome_e   outcome;
} crm_substage_t;


typedef struct {
    char            *name;
    unsigned         position;          /* 0-based, the order of stages.json */
    crm_substage_t  *substages;
    size_t           nsubstages;        /* at least 1 */
} crm_stage_t;


typedef struct {
    crm_stage_t           *stages;
    size_t                 nstages;     /* at least 1 */

    /* the first substage whose outcome is churned, or NULL */
    const crm_stage_t     *churn_stage;
    const crm_substage_t  *churn;

    crm_compat_part_t      parts[CRM_COMPAT_NKINDS];
    size_t                 nparts;      /* in the file's order */
} crm_pipeline_t;


/*
 * Loads and validates the pipeline in dir.  Every failure is
 * CRM_E_INVALID (or CRM_E_INTERNAL when out of memory) with err->message
 * naming the file and the element, for example
 *   "/etc/crm/pipeline/lead/substages.json: [2].score: must be an integer
 *    between 0 and 100"
 *   "/etc/crm/pipeline/stages.json: [3]: duplicate stage \"demo\""
 *   "/etc/crm/pipeline/demo/substages.json: cannot open: No such file..."
 * Checked: stages.json and each substages.json exist, are JSON arrays
 * (files up to 1 MiB), stage names and statuses match [a-z][a-z0-9_]* and
 * their maximum lengths, no duplicate stage, no duplicate status within a
 * stage, every substage has the four fields and may have "outcome"
 * (unknown ones refused), score is an integer 0..100, description and
 * notes are strings of at most CRM_SUBSTAGE_TEXT_MAX characters,
 * description non-empty, outcome "won", "lost" or "churned" and never on
 * the first stage's first substage (where a new lead starts), at least
 * one stage and one substage per stage, at most the maxima above.  The
 * compatibility parts have known names, each at most once, and integer
 * weights 1..100 that sum to 100.
 * On success *out must be released with crm_pipeline_free().
 */
crm_status_e crm_pipeline_load(const char *dir, crm_pipeline_t **out,
    crm_error_t *err);

void crm_pipeline_free(crm_pipeline_t *p);

/*
 * 1 when name has the shape of a stage name or a status: 1..max of
 * [a-z][a-z0-9_]*.  Lists filter by it even for stages a new pipeline no
 * longer has.
 */
int crm_pipeline_name_valid(crm_str_t name, size_t max);

/* NULL when there is no such stage / substage */
const crm_stage_t *crm_pipeline_stage(const crm_pipeline_t *p,
    crm_str_t name);
const crm_substage_t *crm_pipeline_substage(const crm_stage_t *stage,
    crm_str_t status);

/* "won", "lost", "churned"; NULL for CRM_OUTCOME_NONE */
const char *crm_outcome_name(crm_outcome_e outcome);

/* "stage", "score", ... */
const char *crm_compat_name(crm_compat_kind_e kind);

#endif /* CRM_PIPELINE_H */
