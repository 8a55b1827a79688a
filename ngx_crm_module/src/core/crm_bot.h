/*
 * Known automated clients, by their User-Agent: their clicks are recorded
 * and flagged, never counted as a person's.
 */

#ifndef CRM_BOT_H
#define CRM_BOT_H

#include "crm_str.h"


/*
 * 1 when ua names a crawler, link previewer, monitor or HTTP library
 * (case-insensitive substrings such as "bot", "crawl", "spider",
 * "slurp", "facebookexternalhit", "preview", "curl/", "wget/",
 * "python-requests", "headlesschrome"), or is empty.
 */
int crm_bot_user_agent(crm_str_t ua);

#endif /* CRM_BOT_H */
