/*
 * A bump allocator: memory for one API call comes from a chain of malloc'd
 * blocks and goes back in one crm_arena_free().  Worker threads use it for
 * everything they hand back to the event loop, so nothing they touch lives
 * in an nginx pool.  Not thread-safe: one arena belongs to one call.
 */

#include <stdint.h>
#include <stdlib.h>

#include "crm_arena.h"


#define CRM_ARENA_ALIGN       16
#define CRM_ARENA_BLOCK_SIZE  4096

#define crm_arena_align(n)                                                   \
    (((n) + (CRM_ARENA_ALIGN - 1)) & ~((size_t) CRM_ARENA_ALIGN - 1))


struct crm_arena_block_s {
    crm_arena_block_t  *next;
    size_t              size;       /* usable bytes after the header */
    size_t              used;
};


/* the header is padded so that the data after it stays 16-byte aligned */
#define CRM_ARENA_HEADER  crm_arena_align(sizeof(crm_arena_block_t))


static crm_arena_block_t *crm_arena_block_new(size_t size);


void *
crm_arena_alloc(crm_arena_t *a, size_t size)
{
    void               *p;
    size_t              need;
    crm_arena_block_t  *b;

    /* a zero-byte request still gets a distinct, valid pointer */
    if (size == 0) {
        size = 1;
    }

    if (size > SIZE_MAX - CRM_ARENA_HEADER - CRM_ARENA_ALIGN) {
        return NULL;
    }

    need = crm_arena_align(size);

    b = a->head;

    if (b == NULL || b->size - b->used < need) {

        /*
         * big requests get a block of their own, linked behind the
         * current one, so the free space left in it is not wasted
         */
        if (b != NULL && need > CRM_ARENA_BLOCK_SIZE / 4) {
            b = crm_arena_block_new(need);
            if (b == NULL) {
                return NULL;
            }

            b->next = a->head->next;
            a->head->next = b;

        } else {
            b = crm_arena_block_new(need > CRM_ARENA_BLOCK_SIZE
                                    ? need : CRM_ARENA_BLOCK_SIZE);
            if (b == NULL) {
                return NULL;
            }

            b->next = a->head;
            a->head = b;
        }
    }

    p = (unsigned char *) b + CRM_ARENA_HEADER + b->used;
    b->used += need;

    return p;
}


char *
crm_arena_strdup(crm_arena_t *a, crm_str_t s)
{
    char  *p;

    if (s.len == SIZE_MAX) {
        return NULL;
    }

    p = crm_arena_alloc(a, s.len + 1);
    if (p == NULL) {
        return NULL;
    }

    if (s.len > 0) {
        memcpy(p, s.data, s.len);
    }

    /* already zeroed, including the terminating NUL */

    return p;
}


void
crm_arena_free(crm_arena_t *a)
{
    crm_arena_block_t  *b, *next;

    for (b = a->head; b != NULL; b = next) {
        next = b->next;
        free(b);
    }

    a->head = NULL;
}


/* calloc: zeroed memory is part of the contract, and malloc is 16-aligned */
static crm_arena_block_t *
crm_arena_block_new(size_t size)
{
    crm_arena_block_t  *b;

    b = calloc(1, CRM_ARENA_HEADER + size);
    if (b == NULL) {
        return NULL;
    }

    b->size = size;
    b->used = 0;
    b->next = NULL;

    return b;
}
