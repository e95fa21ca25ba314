-- Confinement that holds against a hostile tenant (issue 14): a confined
-- admin cannot lift or widen confinements, group roles confine their
-- members, SET ROLE and SECURITY DEFINER cannot widen a session's reach,
-- patterns have no single-character wildcard, views and channels show a
-- confined role only its documents, and database-wide operations refuse
-- confined callers.

CREATE ROLE regress_cf_adm;
CREATE ROLE regress_cf_writers;
CREATE ROLE regress_cf_member;
CREATE ROLE regress_cf_tenants;
CREATE ROLE regress_cf_tenant1;
CREATE ROLE regress_cf_other;
GRANT regress_cf_writers TO regress_cf_member;
GRANT regress_cf_tenants TO regress_cf_tenant1;
SELECT synclog.grant_role('regress_cf_adm', 'admin');
SELECT synclog.grant_role('regress_cf_writers', 'writer');
SELECT synclog.grant_role('regress_cf_member', 'writer');
SELECT synclog.grant_role('regress_cf_tenants', 'writer');
SELECT synclog.grant_role('regress_cf_tenant1', 'writer');
SELECT synclog.grant_role('regress_cf_other', 'writer');
SELECT synclog.create_doc(d) IS NOT NULL FROM unnest(ARRAY['ta/doc', 'tb/secret', 'acme_1/doc', 'acmeX1/doc', 'back\slash']) d;

-- 1. A confined admin cannot revoke its own confinement or grant others.
SELECT synclog.grant_doc('regress_cf_adm', 'ta/%', 'write');
SET ROLE regress_cf_adm;
SELECT synclog.revoke_doc(current_user::regrole);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.grant_doc('regress_cf_other', '%', 'write');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.grant_doc('regress_cf_adm', 'tb/%', 'write');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('tb/secret', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.rotate_channel_key();
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.compact_due();
\echo :LAST_ERROR_SQLSTATE
-- It sees only its documents in the views.
SELECT doc FROM synclog.status ORDER BY doc;
SELECT doc FROM synclog.stats ORDER BY doc;
SELECT docs FROM synclog.stats_total;
-- and can still do its job there.
SELECT synclog.append('ta/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
SELECT synclog.compact('ta/doc') IS NOT NULL AS rotated;
RESET ROLE;
SELECT count(*) FROM synclog.status WHERE doc IN ('ta/doc', 'tb/secret');

-- 2a. A confined member cannot escape through SET ROLE to its group.
SELECT synclog.grant_doc('regress_cf_member', 'ta/%', 'write');
SET SESSION AUTHORIZATION regress_cf_member;
SELECT synclog.append('tb/secret', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_cf_writers;
SELECT current_user, session_user;
SELECT synclog.append('tb/secret', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM synclog.read('tb/secret', (SELECT log_id FROM synclog.current_log('ta/doc')), 0);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('ta/doc', ARRAY['\x02']::bytea[], ARRAY['\x02']::bytea[]) > 0 AS appended;
RESET ROLE;
RESET SESSION AUTHORIZATION;

-- 2b. A SECURITY DEFINER function owned by an unconfined role does not
-- widen a confined session either.
CREATE FUNCTION public.regress_cf_definer(doc text) RETURNS bigint
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
	RETURN synclog.append(doc, ARRAY['\x03']::bytea[], ARRAY['\x03']::bytea[]);
ALTER FUNCTION public.regress_cf_definer(text) OWNER TO regress_cf_other;
SET SESSION AUTHORIZATION regress_cf_member;
SELECT public.regress_cf_definer('tb/secret');
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
DROP FUNCTION public.regress_cf_definer(text);

-- 2c. grant_doc on a group confines its members; a member's own rows win.
SELECT synclog.grant_doc('regress_cf_tenants', 'ta/%', 'write');
SET ROLE regress_cf_tenant1;
SELECT synclog.append('tb/secret', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('ta/doc', ARRAY['\x04']::bytea[], ARRAY['\x04']::bytea[]) > 0 AS appended;
RESET ROLE;
SELECT synclog.grant_doc('regress_cf_tenant1', 'tb/%', 'write');
SET ROLE regress_cf_tenant1;
SELECT synclog.append('tb/secret', ARRAY['\x05']::bytea[], ARRAY['\x05']::bytea[]) > 0 AS appended;
SELECT synclog.append('ta/doc', ARRAY['\x05']::bytea[], ARRAY['\x05']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- Membership changes take effect at once.
REVOKE regress_cf_tenants FROM regress_cf_tenant1;
SELECT synclog.revoke_doc('regress_cf_tenant1');
SET ROLE regress_cf_tenant1;
SELECT synclog.append('tb/secret', ARRAY['\x06']::bytea[], ARRAY['\x06']::bytea[]) > 0 AS appended_unconfined;
RESET ROLE;
GRANT regress_cf_tenants TO regress_cf_tenant1;
SET ROLE regress_cf_tenant1;
SELECT synclog.append('tb/secret', ARRAY['\x07']::bytea[], ARRAY['\x07']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Patterns: _ is literal, % is the only wildcard, a backslash escapes.
SELECT synclog.grant_doc('regress_cf_other', 'acme_1/%', 'write');
SET ROLE regress_cf_other;
SELECT synclog.append('acme_1/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]) > 0 AS appended;
SELECT synclog.append('acmeX1/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT synclog.grant_doc('regress_cf_other', 'back\\slash', 'write');
SET ROLE regress_cf_other;
SELECT synclog.append('back\slash', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]) > 0 AS appended;
RESET ROLE;
SELECT synclog.grant_doc('regress_cf_other', 'ends-with\', 'write');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.grant_doc('regress_cf_other', '', 'write');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.grant_doc('regress_cf_other', 'x', 'admin');
\echo :LAST_ERROR_SQLSTATE

-- Roles: an OID that names no role is refused; rows name roles, not OIDs.
SELECT synclog.grant_doc(4000000000::oid::regrole, 'x/%');
\echo :LAST_ERROR_SQLSTATE
SELECT role, pattern, privilege FROM synclog.doc_grant
 WHERE role::text LIKE 'regress_cf%' ORDER BY 1::text, 2;

-- Channels: only for a reader of the document, unlike for each document,
-- and they all change with the key.
SET ROLE regress_cf_adm;
SELECT synclog.channel('tb/secret');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.channel('ta/doc') ~ '^synclog_[0-9a-f]{32}$' AS channel_format;
RESET ROLE;
SELECT synclog.channel('ta/doc') AS ch_a \gset
SELECT synclog.channel('tb/secret') <> :'ch_a' AS distinct_channels;
SELECT synclog.rotate_channel_key();
SELECT synclog.channel('ta/doc') <> :'ch_a' AS key_rotated;
SELECT count(*) FROM synclog.channel_key;

SELECT synclog.revoke_doc(r::regrole) >= 0 FROM unnest(ARRAY['regress_cf_adm', 'regress_cf_member', 'regress_cf_tenants', 'regress_cf_tenant1', 'regress_cf_other']) r;
SELECT synclog.revoke_role(r::regrole) FROM unnest(ARRAY['regress_cf_adm', 'regress_cf_writers', 'regress_cf_member', 'regress_cf_tenants', 'regress_cf_tenant1', 'regress_cf_other']) r;
SELECT synclog.drop_doc(d) FROM unnest(ARRAY['ta/doc', 'tb/secret', 'acme_1/doc', 'acmeX1/doc', 'back\slash']) d;
DROP ROLE regress_cf_adm, regress_cf_writers, regress_cf_member, regress_cf_tenants, regress_cf_tenant1, regress_cf_other;
