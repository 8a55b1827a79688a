/*
 * Password hashing.  New hashes are argon2id (libargon2) with OWASP's
 * parameters (19 MiB, t=2, p=1) or stronger.  Legacy bcrypt hashes
 * ($2a$/$2b$/$2y$, from the Python service this replaces) verify through
 * libxcrypt and are reported as needing a rehash.
 */

#ifndef CRM_PASSWORD_H
#define CRM_PASSWORD_H

#include <stdint.h>

#include "crm_error.h"


#define CRM_PASSWORD_MIN        8
#define CRM_PASSWORD_MAX        128     /* characters, per the API */
#define CRM_PASSWORD_HASH_SIZE  192


typedef struct {
    uint32_t  m_cost_kib;
    uint32_t  t_cost;
    uint32_t  parallelism;
} crm_argon2_params_t;


/* OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1 */
extern const crm_argon2_params_t  crm_argon2_owasp;


/*
 * Hashes pw into out as an argon2id encoded string ("$argon2id$v=19$...")
 * with a fresh 16-byte salt from the OS.  Returns CRM_OK or CRM_E_INTERNAL.
 */
crm_status_e crm_password_hash(const char *pw, size_t len,
    const crm_argon2_params_t *params, char *out, size_t out_size,
    crm_error_t *err);

/*
 * Verifies pw against a stored argon2id or bcrypt hash.  *match is 1 on a
 * match.  *rehash is 1 when the stored hash is not argon2id or is weaker
 * than params.  An unknown or malformed stored hash is *match = 0 (and a
 * cause in err for the log, code still CRM_OK).  CRM_E_INTERNAL only on
 * resource failures.
 */
crm_status_e crm_password_verify(const char *pw, size_t len,
    const char *stored, const crm_argon2_params_t *params, int *match,
    int *rehash, crm_error_t *err);

/*
 * Spends the same time as a real verify against nothing, so that an
 * unknown account and a wrong password cost the same.
 */
void crm_password_verify_dummy(const char *pw, size_t len,
    const crm_argon2_params_t *params);

#endif /* CRM_PASSWORD_H */
