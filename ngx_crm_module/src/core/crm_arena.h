/*
 * A bump allocator whose blocks are freed together: one per API call, so
 * the data a worker thread reads is never in an nginx pool.
 */

#ifndef CRM_ARENA_H
#define CRM_ARENA_H

#include <stddef.h>

#include "crm_str.h"


typedef struct crm_arena_block_s  crm_arena_block_t;

typedef struct {
    crm_arena_block_t  *head;
} crm_arena_t;


/* zeroed, 16-byte aligned memory; NULL on ENOMEM */
void *crm_arena_alloc(crm_arena_t *a, size_t size);

/* a NUL-terminated copy of s; NULL on ENOMEM */
char *crm_arena_strdup(crm_arena_t *a, crm_str_t s);

void crm_arena_free(crm_arena_t *a);

#endif /* CRM_ARENA_H */
