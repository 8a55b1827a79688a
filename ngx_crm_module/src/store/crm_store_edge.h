/*
 * The affiliate edge's database work: a link as the redirect needs it, and
 * batches of clicks.
 */

#ifndef CRM_STORE_EDGE_H
#define CRM_STORE_EDGE_H

#include <stdint.h>

#include "crm_db.h"
#include "crm_url.h"


typedef struct {
    int      found;
    int      active;
    size_t   target_len;
    char     target[CRM_URL_MAX + 1];
} crm_edge_link_t;


crm_status_e crm_store_edge_link(crm_db_t *db, const char *id,
    crm_edge_link_t *link, crm_error_t *err);

/*
 * Whether the chunks a batch is read from are still the batch's (shared
 * memory that another process may free): asked after they were read,
 * before the commit.  NULL: they always are.
 */
typedef struct {
    int   (*check)(void *data);
    void   *data;
} crm_edge_intact_t;


/*
 * Inserts the clicks in chunks (each a run of whole crm_click.h lines)
 * and adds them to their links' counters, in one transaction, after
 * creating the month partitions they need.  A click already stored (a
 * batch sent again after its sender lost it between commit and
 * acknowledgement) is skipped and not counted twice; *inserted is the
 * number of new rows.  CRM_E_GONE, with nothing written, when intact says
 * the chunks changed under the copy.  A failure that PostgreSQL's answer
 * blames on the lines themselves is crm_db_refused_data().
 */
crm_status_e crm_store_edge_clicks(crm_db_t *db, const crm_str_t *chunks,
    size_t n, const crm_edge_intact_t *intact, uint64_t *inserted,
    crm_error_t *err);

#endif /* CRM_STORE_EDGE_H */
