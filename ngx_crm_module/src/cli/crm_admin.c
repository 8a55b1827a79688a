/*
 * crm-admin: creates the first admin, or promotes an existing account,
 * without hand-written SQL.  "./build.sh admin EMAIL" runs it against the
 * private database.
 *
 *   crm-admin --database CONNINFO EMAIL
 *
 * A new account gets the password in CRM_ADMIN_PASSWORD, or a generated
 * one that is printed once.  An existing account keeps its password.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "crm_accounts.h"
#include "crm_base64.h"


static int crm_admin_generate_password(char *out, size_t size);


static int
crm_admin_generate_password(char *out, size_t size)
{
    size_t         n;
    unsigned char  raw[18];

    if (size < crm_base64url_encoded_len(sizeof(raw)) + 1
        || RAND_bytes(raw, sizeof(raw)) != 1)
    {
        return -1;
    }

    n = crm_base64url_encode(raw, sizeof(raw), out);
    out[n] = '\0';

    return 0;
}


int
main(int argc, char **argv)
{
    int                   created;
    char                  generated[32];
    crm_db_t             *db;
    const char           *password;
    crm_error_t           err;
    crm_status_e          rc;
    crm_account_t         acct;
    crm_db_conf_t         conf;

    if (argc != 4 || strcmp(argv[1], "--database") != 0) {
        fprintf(stderr, "usage: crm-admin --database CONNINFO EMAIL\n");
        return 2;
    }

    memset(&conf, 0, sizeof(conf));
    memset(&err, 0, sizeof(err));

    conf.conninfo = argv[2];
    conf.connect_timeout = 5;
    conf.statement_timeout = 30000;

    if (crm_db_conf_init(&conf, &err) != CRM_OK) {
        fprintf(stderr, "crm-admin: invalid database: %s\n", err.message);
        return 2;
    }

    password = getenv("CRM_ADMIN_PASSWORD");
    generated[0] = '\0';

    if (password == NULL || password[0] == '\0') {
        if (crm_admin_generate_password(generated, sizeof(generated)) != 0) {
            fprintf(stderr, "crm-admin: cannot generate a password\n");
            return 1;
        }

        password = generated;
    }

    db = crm_db_for_thread(&conf);
    if (db == NULL) {
        fprintf(stderr, "crm-admin: out of memory\n");
        return 1;
    }

    rc = crm_accounts_make_admin(db, argv[3], password, &crm_argon2_owasp,
                                 &acct, &created, &err);
    crm_db_close_all();
    if (rc != CRM_OK) {
        fprintf(stderr, "crm-admin: %s%s%s%s%s\n",
                err.field, err.field[0] ? ": " : "", err.message,
                err.cause[0] ? " - " : "", err.cause);
        return 1;
    }

    if (!created) {
        printf("promoted %s (%s) to admin\n", acct.email, acct.id);
        return 0;
    }

    printf("created admin %s (%s)\n", acct.email, acct.id);

    if (generated[0] != '\0') {
        printf("password: %s\n", generated);
    }

    return 0;
}
