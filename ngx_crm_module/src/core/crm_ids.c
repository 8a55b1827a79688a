/*
 * The ids of the affiliate edge; see crm_ids.h.
 *
 * Random characters come from OpenSSL's generator, which is thread-safe
 * and reseeds itself after a fork, so nginx's workers never share a
 * stream.  A random byte maps to a base62 digit only when it is below
 * 248 (4 * 62): the others are dropped rather than folded in, which
 * would make the first eight digits likelier than the rest.
 */

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "crm_ids.h"


#define CRM_IDS_RANDOM_LEN   10             /* random part of a link id */
#define CRM_IDS_TS_LEN       6              /* a click id's second */
#define CRM_IDS_NONCE_LEN    8              /* random end of a click id */
#define CRM_IDS_TS_LIMIT     56800235584LL  /* 62^6 */
#define CRM_IDS_BYTE_LIMIT   248            /* 4 * 62, below 256 */

/* 62^8, and an affine map onto it: the multiplier is prime to 62 */
#define CRM_IDS_NONCE_LIMIT  218340105584896ULL
#define CRM_IDS_NONCE_MUL    6364136223846793005ULL
#define CRM_IDS_NONCE_ADD    1442695040888963407ULL


static int crm_ids_random(char *out, size_t n);
static int crm_ids_nonce(char *out);
static int crm_ids_check(const crm_link_key_t *key, const char *s,
    char *out);
static int crm_ids_digit(char c);


static const char  crm_ids_alphabet[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";


int
crm_link_id_generate(const crm_link_key_t *key, char *out)
{
    if (crm_ids_random(out, CRM_IDS_RANDOM_LEN) != 0
        || crm_ids_check(key, out, out + CRM_IDS_RANDOM_LEN) != 0)
    {
        return -1;
    }

    out[CRM_LINK_ID_LEN] = '\0';

    return 0;
}


int
crm_link_id_shaped(const char *s, size_t len)
{
    size_t  i;

    if (len != CRM_LINK_ID_LEN) {
        return 0;
    }

    /* one character at a time: a shorter C string stops at its NUL */
    for (i = 0; i < CRM_LINK_ID_LEN; i++) {
        if (crm_ids_digit(s[i]) < 0) {
            return 0;
        }
    }

    return 1;
}


int
crm_link_id_valid(const crm_link_key_t *key, const char *s, size_t len)
{
    char  check[2];

    if (!crm_link_id_shaped(s, len)
        || crm_ids_check(key, s, check) != 0)
    {
        return 0;
    }

    return s[CRM_IDS_RANDOM_LEN] == check[0]
           && s[CRM_IDS_RANDOM_LEN + 1] == check[1];
}


int
crm_click_id_generate(const char *link_id, int64_t now, char *out)
{
    int      i;
    int64_t  ts;

    if (!crm_link_id_shaped(link_id, CRM_LINK_ID_LEN)
        || now < 0 || now >= CRM_IDS_TS_LIMIT)
    {
        return -1;
    }

    memcpy(out, link_id, CRM_LINK_ID_LEN);

    ts = now;

    for (i = CRM_IDS_TS_LEN - 1; i >= 0; i--) {
        out[CRM_LINK_ID_LEN + i] = crm_ids_alphabet[ts % 62];
        ts /= 62;
    }

    if (crm_ids_nonce(out + CRM_LINK_ID_LEN + CRM_IDS_TS_LEN) != 0) {
        return -1;
    }

    out[CRM_CLICK_ID_LEN] = '\0';

    return 0;
}


int
crm_click_id_parse(const crm_link_key_t *key, const char *s, size_t len,
    char *link_id, int64_t *ts)
{
    int      d;
    size_t   i;
    int64_t  t;

    if (len != CRM_CLICK_ID_LEN
        || !crm_link_id_valid(key, s, CRM_LINK_ID_LEN))
    {
        return 0;
    }

    t = 0;

    for (i = CRM_LINK_ID_LEN; i < CRM_CLICK_ID_LEN; i++) {
        d = crm_ids_digit(s[i]);
        if (d < 0) {
            return 0;
        }

        if (i < CRM_LINK_ID_LEN + CRM_IDS_TS_LEN) {
            t = t * 62 + d;
        }
    }

    if (link_id != NULL) {
        memcpy(link_id, s, CRM_LINK_ID_LEN);
        link_id[CRM_LINK_ID_LEN] = '\0';
    }

    if (ts != NULL) {
        *ts = t;
    }

    return 1;
}


/*
 * A click's nonce must be unique among the clicks of one link in one
 * second, not secret, and is made on every redirect.  Each thread counts
 * from a random start in [0, 62^8) and maps the count through an affine
 * bijection of that range, so a thread never repeats itself within 62^8
 * clicks, and two threads collide only if their starts fall within their
 * counts of each other.  The nonces are unique, not unpredictable: two of
 * one thread give away how many clicks it made between them.  A forked
 * child starts afresh, or it would repeat its parent.
 */
static __thread uint64_t  crm_ids_next;
static __thread int       crm_ids_seeded;
static pthread_once_t     crm_ids_once = PTHREAD_ONCE_INIT;


static void
crm_ids_forked(void)
{
    crm_ids_seeded = 0;
}


static void
crm_ids_atfork(void)
{
    (void) pthread_atfork(NULL, NULL, crm_ids_forked);
}


static int
crm_ids_nonce(char *out)
{
    int            i;
    uint64_t       v;
    unsigned char  seed[8];

    if (!crm_ids_seeded) {
        (void) pthread_once(&crm_ids_once, crm_ids_atfork);

        if (RAND_bytes(seed, sizeof(seed)) != 1) {
            return -1;
        }

        memcpy(&crm_ids_next, seed, sizeof(seed));
        crm_ids_next %= CRM_IDS_NONCE_LIMIT;
        crm_ids_seeded = 1;
    }

    v = (uint64_t) (((unsigned __int128) crm_ids_next * CRM_IDS_NONCE_MUL
                     + CRM_IDS_NONCE_ADD) % CRM_IDS_NONCE_LIMIT);

    crm_ids_next = (crm_ids_next + 1) % CRM_IDS_NONCE_LIMIT;

    for (i = CRM_IDS_NONCE_LEN - 1; i >= 0; i--) {
        out[i] = crm_ids_alphabet[v % 62];
        v /= 62;
    }

    return 0;
}


static int
crm_ids_random(char *out, size_t n)
{
    size_t         i, k;
    unsigned char  buf[16];

    i = 0;

    while (i < n) {
        if (RAND_bytes(buf, sizeof(buf)) != 1) {
            return -1;
        }

        for (k = 0; k < sizeof(buf) && i < n; k++) {
            if (buf[k] < CRM_IDS_BYTE_LIMIT) {
                out[i++] = crm_ids_alphabet[buf[k] % 62];
            }
        }
    }

    return 0;
}


/*
 * The two check characters of a link id: the first 32 bits of the
 * HMAC-SHA256 of its ten random characters under the key, modulo 62^2,
 * as two base62 digits (the modulo's bias, 2^32 mod 3844 in 2^32, is
 * negligible).  -1 when OpenSSL fails.
 */
static int
crm_ids_check(const crm_link_key_t *key, const char *s, char *out)
{
    uint32_t       h;
    unsigned int   len;
    unsigned char  mac[EVP_MAX_MD_SIZE];

    if (HMAC(EVP_sha256(), key->data, (int) key->len,
             (const unsigned char *) s, CRM_IDS_RANDOM_LEN, mac, &len)
        == NULL)
    {
        return -1;
    }

    h = ((uint32_t) mac[0] << 24 | (uint32_t) mac[1] << 16
         | (uint32_t) mac[2] << 8 | (uint32_t) mac[3]) % (62 * 62);

    out[0] = crm_ids_alphabet[h / 62];
    out[1] = crm_ids_alphabet[h % 62];

    return 0;
}


/*
 * every redirect reads its id's twelve characters twice: one load each,
 * not three ranges (-1: not a base62 digit)
 */
#define crm_ids_d(c, v)  [(unsigned char) (c)] = (v) + 1

static const unsigned char  crm_ids_digits[256] = {
    crm_ids_d('0', 0), crm_ids_d('1', 1), crm_ids_d('2', 2),
    crm_ids_d('3', 3), crm_ids_d('4', 4), crm_ids_d('5', 5),
    crm_ids_d('6', 6), crm_ids_d('7', 7), crm_ids_d('8', 8),
    crm_ids_d('9', 9),
    crm_ids_d('A', 10), crm_ids_d('B', 11), crm_ids_d('C', 12),
    crm_ids_d('D', 13), crm_ids_d('E', 14), crm_ids_d('F', 15),
    crm_ids_d('G', 16), crm_ids_d('H', 17), crm_ids_d('I', 18),
    crm_ids_d('J', 19), crm_ids_d('K', 20), crm_ids_d('L', 21),
    crm_ids_d('M', 22), crm_ids_d('N', 23), crm_ids_d('O', 24),
    crm_ids_d('P', 25), crm_ids_d('Q', 26), crm_ids_d('R', 27),
    crm_ids_d('S', 28), crm_ids_d('T', 29), crm_ids_d('U', 30),
    crm_ids_d('V', 31), crm_ids_d('W', 32), crm_ids_d('X', 33),
    crm_ids_d('Y', 34), crm_ids_d('Z', 35),
    crm_ids_d('a', 36), crm_ids_d('b', 37), crm_ids_d('c', 38),
    crm_ids_d('d', 39), crm_ids_d('e', 40), crm_ids_d('f', 41),
    crm_ids_d('g', 42), crm_ids_d('h', 43), crm_ids_d('i', 44),
    crm_ids_d('j', 45), crm_ids_d('k', 46), crm_ids_d('l', 47),
    crm_ids_d('m', 48), crm_ids_d('n', 49), crm_ids_d('o', 50),
    crm_ids_d('p', 51), crm_ids_d('q', 52), crm_ids_d('r', 53),
    crm_ids_d('s', 54), crm_ids_d('t', 55), crm_ids_d('u', 56),
    crm_ids_d('v', 57), crm_ids_d('w', 58), crm_ids_d('x', 59),
    crm_ids_d('y', 60), crm_ids_d('z', 61)
};


static int
crm_ids_digit(char c)
{
    return (int) crm_ids_digits[(unsigned char) c] - 1;
}
