-- Merchants: accounts that sign in with an identity provider's ID token.
-- They are keyed by the provider's (issuer, subject), never by email: the
-- provider may give no email, or one that a password account already
-- uses, so emails stay unique among password accounts only.
ALTER TABLE crm.accounts
    ALTER COLUMN email DROP NOT NULL,
    ADD COLUMN idp_issuer   text,
    ADD COLUMN idp_subject  text,
    ADD COLUMN display_name text NOT NULL DEFAULT '',
    ADD COLUMN company      text NOT NULL DEFAULT '',
    ADD COLUMN phone        text NOT NULL DEFAULT '',
    ADD CONSTRAINT accounts_identity_pair
        CHECK ((idp_issuer IS NULL) = (idp_subject IS NULL)),
    ADD CONSTRAINT accounts_identity_limits
        CHECK (length(idp_issuer) <= 254 AND length(idp_subject) BETWEEN 1 AND 128),
    ADD CONSTRAINT accounts_email_or_identity
        CHECK (email IS NOT NULL OR idp_issuer IS NOT NULL),
    ADD CONSTRAINT accounts_profile_limits
        CHECK (length(display_name) <= 200 AND length(company) <= 200
               AND length(phone) <= 32);

CREATE UNIQUE INDEX accounts_identity_key
    ON crm.accounts (idp_issuer, idp_subject) WHERE idp_issuer IS NOT NULL;

DROP INDEX crm.accounts_email_key;
CREATE UNIQUE INDEX accounts_email_key
    ON crm.accounts (email) WHERE idp_issuer IS NULL;
