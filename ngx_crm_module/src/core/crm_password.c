/*
 * Password hashing: argon2id for every new hash, bcrypt verification for
 * the hashes inherited from the Python service.
 *
 * Everything here runs on nginx thread-pool threads, several at a time:
 * libargon2 allocates its own memory per call, and bcrypt goes through
 * crypt_rn() with a per-call struct crypt_data (about 32 KiB, so on the
 * heap, not on a thread stack), so there is no shared state.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>

#include "crm_password.h"


#define CRM_ARGON2_PREFIX     "$argon2id$"
#define CRM_ARGON2_SALT_LEN   16
#define CRM_ARGON2_HASH_LEN   32

/*
 * Ceilings for the parameters of a stored hash.  Stored hashes are ours,
 * but a corrupt or planted row must not make one login allocate gigabytes
 * or spin for minutes on a worker thread.
 */
#define CRM_ARGON2_MAX_M      (1024 * 1024)     /* KiB, 1 GiB */
#define CRM_ARGON2_MAX_T      64
#define CRM_ARGON2_MAX_P      64

#define CRM_BCRYPT_LEN        60


typedef struct {
    uint32_t  version;
    uint32_t  m;
    uint32_t  t;
    uint32_t  p;
} crm_password_argon2_t;


static int crm_password_salt(unsigned char *salt, size_t len);
static int crm_password_parse_argon2(const char *stored,
    crm_password_argon2_t *a);
static const char *crm_password_parse_num(const char *p, const char *name,
    uint32_t *val);
static crm_status_e crm_password_verify_argon2(const char *pw, size_t len,
    const char *stored, const crm_argon2_params_t *params, int *match,
    int *rehash, crm_error_t *err);
static int crm_password_is_bcrypt(const char *stored);
static crm_status_e crm_password_verify_bcrypt(const char *pw, size_t len,
    const char *stored, int *match, crm_error_t *err);
static crm_status_e crm_password_unusable(crm_error_t *err,
    const char *cause);


const crm_argon2_params_t  crm_argon2_owasp = { 19456, 2, 1 };


crm_status_e
crm_password_hash(const char *pw, size_t len,
    const crm_argon2_params_t *params, char *out, size_t out_size,
    crm_error_t *err)
{
    int            rc;
    char           reason[128];
    size_t         need;
    unsigned char  salt[CRM_ARGON2_SALT_LEN];

    if (len > UINT32_MAX) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "password of %zu bytes", len);
    }

    need = argon2_encodedlen(params->t_cost, params->m_cost_kib,
                             params->parallelism, CRM_ARGON2_SALT_LEN,
                             CRM_ARGON2_HASH_LEN, Argon2_id);

    if (need > out_size) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "argon2 hash needs %zu bytes, have %zu",
                               need, out_size);
    }

    if (crm_password_salt(salt, sizeof(salt)) != 0) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "getrandom() failed: %s",
                               strerror_r(errno, reason, sizeof(reason)));
    }

    rc = argon2id_hash_encoded(params->t_cost, params->m_cost_kib,
                               params->parallelism, pw, (size_t) len, salt,
                               sizeof(salt), CRM_ARGON2_HASH_LEN, out,
                               out_size);

    if (rc != ARGON2_OK) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "argon2id_hash_encoded() failed: %s",
                               argon2_error_message(rc));
    }

    return CRM_OK;
}


crm_status_e
crm_password_verify(const char *pw, size_t len, const char *stored,
    const crm_argon2_params_t *params, int *match, int *rehash,
    crm_error_t *err)
{
    *match = 0;
    *rehash = 0;

    if (stored == NULL) {
        return crm_password_unusable(err, "no stored password hash");
    }

    if (strncmp(stored, CRM_ARGON2_PREFIX, sizeof(CRM_ARGON2_PREFIX) - 1)
        == 0)
    {
        return crm_password_verify_argon2(pw, len, stored, params, match,
                                          rehash, err);
    }

    if (crm_password_is_bcrypt(stored)) {

        /* any bcrypt hash is a legacy one, whatever its cost */
        *rehash = 1;

        return crm_password_verify_bcrypt(pw, len, stored, match, err);
    }

    return crm_password_unusable(err, "unknown password hash format");
}


static crm_status_e
crm_password_verify_argon2(const char *pw, size_t len, const char *stored,
    const crm_argon2_params_t *params, int *match, int *rehash,
    crm_error_t *err)
{
    int                    rc;
    crm_password_argon2_t  a;

    if (crm_password_parse_argon2(stored, &a) != 0) {
        return crm_password_unusable(err, "malformed argon2id hash");
    }

    if (a.m > CRM_ARGON2_MAX_M || a.t > CRM_ARGON2_MAX_T
        || a.p > CRM_ARGON2_MAX_P)
    {
        return crm_password_unusable(err, "argon2id hash parameters "
                                     "over the verify ceiling");
    }

    if (len > UINT32_MAX) {
        return crm_password_unusable(err, "password too long");
    }

    *rehash = (a.version != ARGON2_VERSION_13
               || a.m < params->m_cost_kib
               || a.t < params->t_cost
               || a.p < params->parallelism);

    rc = argon2id_verify(stored, pw, len);

    switch (rc) {

    case ARGON2_OK:
        *match = 1;
        return CRM_OK;

    case ARGON2_VERIFY_MISMATCH:
        return CRM_OK;

    case ARGON2_MEMORY_ALLOCATION_ERROR:
    case ARGON2_THREAD_FAIL:
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "argon2id_verify() failed: %s",
                               argon2_error_message(rc));

    default:
        return crm_password_unusable(err, argon2_error_message(rc));
    }
}


/*
 * Reads "$argon2id$v=19$m=19456,t=2,p=1$..." (v= is optional, as in
 * libargon2's own decoder, where its absence means version 0x10).
 */
static int
crm_password_parse_argon2(const char *stored, crm_password_argon2_t *a)
{
    const char  *p;

    p = stored + sizeof(CRM_ARGON2_PREFIX) - 1;

    a->version = ARGON2_VERSION_10;

    if (strncmp(p, "v=", 2) == 0) {
        p = crm_password_parse_num(p, "v=", &a->version);
        if (p == NULL || *p++ != '$') {
            return -1;
        }
    }

    p = crm_password_parse_num(p, "m=", &a->m);
    if (p == NULL || *p++ != ',') {
        return -1;
    }

    p = crm_password_parse_num(p, "t=", &a->t);
    if (p == NULL || *p++ != ',') {
        return -1;
    }

    p = crm_password_parse_num(p, "p=", &a->p);
    if (p == NULL || *p != '$') {
        return -1;
    }

    return 0;
}


static const char *
crm_password_parse_num(const char *p, const char *name, uint32_t *val)
{
    uint64_t  n;

    if (strncmp(p, name, 2) != 0) {
        return NULL;
    }

    p += 2;

    if (*p < '0' || *p > '9') {
        return NULL;
    }

    n = 0;

    while (*p >= '0' && *p <= '9') {
        n = n * 10 + (uint64_t) (*p++ - '0');

        if (n > UINT32_MAX) {
            return NULL;
        }
    }

    *val = (uint32_t) n;

    return p;
}


static int
crm_password_is_bcrypt(const char *stored)
{
    return strlen(stored) == CRM_BCRYPT_LEN
           && (strncmp(stored, "$2a$", 4) == 0
               || strncmp(stored, "$2b$", 4) == 0
               || strncmp(stored, "$2y$", 4) == 0);
}


static crm_status_e
crm_password_verify_bcrypt(const char *pw, size_t len, const char *stored,
    int *match, crm_error_t *err)
{
    char               *phrase, *out;
    size_t              out_len;
    crm_status_e        rc;
    struct crypt_data  *data;

    /* crypt takes a C string: "secret\0x" must not verify as "secret" */
    if (len > 0 && memchr(pw, '\0', len) != NULL) {
        return crm_password_unusable(err, "password holds a NUL byte");
    }

    phrase = NULL;
    rc = CRM_E_INTERNAL;

    data = calloc(1, sizeof(struct crypt_data));
    if (data == NULL) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        crm_error_cause(err, "calloc() failed");
        goto done;
    }

    phrase = malloc(len + 1);
    if (phrase == NULL) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        crm_error_cause(err, "malloc() failed");
        goto done;
    }

    memcpy(phrase, pw, len);
    phrase[len] = '\0';

    out = crypt_rn(phrase, stored, data, (int) sizeof(struct crypt_data));
    if (out == NULL) {
        rc = crm_password_unusable(err, "crypt_rn() rejected the bcrypt "
                                   "hash");
        goto done;
    }

    out_len = strlen(out);

    *match = (out_len == CRM_BCRYPT_LEN
              && CRYPTO_memcmp(out, stored, CRM_BCRYPT_LEN) == 0);

    rc = CRM_OK;

done:

    if (phrase != NULL) {
        OPENSSL_cleanse(phrase, len);
        free(phrase);
    }

    if (data != NULL) {
        OPENSSL_cleanse(data, sizeof(struct crypt_data));
        free(data);
    }

    return rc;
}


/*
 * Hashing with the same parameters costs what argon2id_verify() costs
 * (verify decodes the stored string, then computes exactly this), and it
 * follows params when the operator raises them.
 */
void
crm_password_verify_dummy(const char *pw, size_t len,
    const crm_argon2_params_t *params)
{
    unsigned char  hash[CRM_ARGON2_HASH_LEN];

    static const unsigned char  salt[CRM_ARGON2_SALT_LEN] =
        "crm-dummy-salt!";

    if (len > UINT32_MAX) {
        len = UINT32_MAX;
    }

    (void) argon2id_hash_raw(params->t_cost, params->m_cost_kib,
                             params->parallelism, pw, len, salt, sizeof(salt),
                             hash, sizeof(hash));

    OPENSSL_cleanse(hash, sizeof(hash));
}


static int
crm_password_salt(unsigned char *salt, size_t len)
{
    ssize_t  n;

    while (len > 0) {
        n = getrandom(salt, len, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }

            return -1;
        }

        salt += n;
        len -= (size_t) n;
    }

    return 0;
}


/* a stored hash we cannot use is "no match", with the reason for the log */
static crm_status_e
crm_password_unusable(crm_error_t *err, const char *cause)
{
    crm_error_set(err, CRM_OK, NULL, "%s", "");
    crm_error_cause(err, "%s", cause);

    return CRM_OK;
}
