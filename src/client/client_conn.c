/*
 * client_conn.c
 *
 * The session with the server over libpq: connecting and LISTENing on the
 * document's channel, running a query and classifying its failure,
 * reading columns out of binary results, acknowledging positions
 * (synclog.ack) and waiting for a notification (slcl_wait).
 *
 * Owns: the PGconn of a handle, the mapping of SQLSTATEs to client return
 * codes and to download reasons (slcli_reason_of), and when an ack is
 * sent (slcli_maybe_ack).
 * Must never: acknowledge a position that is not durable locally (callers
 * commit their transaction first; a download acknowledges only its target, to
 * keep the log retained), or keep a connection the server or the network
 * broke: it is dropped and the next call reconnects.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <poll.h>

void
slcli_drop_conn(slcl_client *c)
{
	if (c->conn)
		PQfinish(c->conn);
	c->conn = NULL;
	/* asked again on the next connection (client_repair.c) */
	c->srv_v11 = 0;
	c->cost_asked = 0;
}

/* Server notices (e.g. WARNINGs) become warning events, not stderr noise. */
static void
on_notice(void *arg, const char *message)
{
	slcl_client *c = arg;
	char		line[512];

	snprintf(line, sizeof(line), "%s", message);
	slcli_one_line(line);
	slcli_emit_simple(c, SLCL_EV_WARNING, "server: %s", line);
}

slcl_rc
slcli_ensure_conn(slcl_client *c)
{
	char		sql[128];
	PGresult   *res;

	if (c->conn && PQstatus(c->conn) == CONNECTION_OK)
		return SLCL_OK;
	slcli_drop_conn(c);
	if (c->dsn == NULL)
		return slcli_fail(c, SLCL_ERR_ARG, "no connection string given");
	c->conn = PQconnectdb(c->dsn);
	if (PQstatus(c->conn) != CONNECTION_OK)
	{
		slcli_fail(c, SLCL_ERR_CONN, "could not connect: %s", PQerrorMessage(c->conn));
		slcli_drop_conn(c);
		return SLCL_ERR_CONN;
	}
	PQsetNoticeProcessor(c->conn, on_notice, c);

	/*
	 * PROTOCOL.md section 12: the channel is the server's to say (it
	 * depends on a key of the database that can change), asked on every
	 * connect; it is a plain lowercase identifier, checked before it
	 * reaches the LISTEN.
	 */
	{
		const char *vals[1] = {c->doc};
		const char *ch;
		size_t		len;

		res = PQexecParams(c->conn, "SELECT synclog.channel($1)", 1, NULL, vals,
						   NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		{
			slcli_fail(c, SLCL_ERR_CONN, "could not get the document's channel: %s",
					   PQerrorMessage(c->conn));
			PQclear(res);
			slcli_drop_conn(c);
			return SLCL_ERR_CONN;
		}
		ch = PQgetvalue(res, 0, 0);
		len = strlen(ch);
		if (len == 0 || len >= sizeof(c->channel) ||
			strspn(ch, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
		{
			slcli_fail(c, SLCL_ERR_SERVER, "the server gave an invalid channel name");
			PQclear(res);
			slcli_drop_conn(c);
			return SLCL_ERR_SERVER;
		}
		memcpy(c->channel, ch, len + 1);
		PQclear(res);
	}

	/*
	 * The protocol version, asked on every connect (a failover can land on
	 * another server): 2 verifies positions and serves groups (PROTOCOL.md
	 * sections 3a and 4a); a server without synclog.protocol_version, or
	 * a role that may not call it, speaks version 1.
	 */
	res = PQexec(c->conn, "SELECT synclog.protocol_version()");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		c->proto = atoi(PQgetvalue(res, 0, 0)) >= 2 ? 2 : 1;
	else
	{
		const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (st == NULL || (strcmp(st, "42883") != 0 && strcmp(st, "42501") != 0))
		{
			slcli_fail(c, SLCL_ERR_CONN, "could not ask the protocol version: %s",
					   PQerrorMessage(c->conn));
			PQclear(res);
			slcli_drop_conn(c);
			return SLCL_ERR_CONN;
		}
		c->proto = 1;
	}
	PQclear(res);
	snprintf(sql, sizeof(sql), "LISTEN %s", c->channel);
	res = PQexec(c->conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		slcli_fail(c, SLCL_ERR_CONN, "LISTEN failed: %s", PQerrorMessage(c->conn));
		PQclear(res);
		slcli_drop_conn(c);
		return SLCL_ERR_CONN;
	}
	PQclear(res);
	slcli_emit_simple(c, SLCL_EV_CONNECT, "connected, listening on %s", c->channel);
	return SLCL_OK;
}

/*
 * Run a query with text parameters (those with fmts[i] = 1 are binary) and
 * binary results.  Returns the result on success; otherwise NULL with
 * *rc set (SLCL_ERR_CONN if the connection broke, else SLCL_ERR_SERVER)
 * and sqlstate filled in.
 */
PGresult *
slcli_query(slcl_client *c, const char *sql, int n, const char *const *vals,
			const int *lens, const int *fmts, slcl_rc *rc, char sqlstate[6])
{
	PGresult   *res;
	ExecStatusType s;
	const char *st;

	sqlstate[0] = '\0';
	*rc = slcli_ensure_conn(c);
	if (*rc != SLCL_OK)
		return NULL;
	res = PQexecParams(c->conn, sql, n, NULL, vals, lens, fmts, 1);
	s = PQresultStatus(res);
	if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
		return res;
	st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (st)
		snprintf(sqlstate, 6, "%s", st);
	slcli_fail(c, SLCL_ERR_SERVER, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn));
	PQclear(res);
	if (PQstatus(c->conn) != CONNECTION_OK || sqlstate[0] == '\0' ||
		strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0)
	{
		slcli_drop_conn(c);
		*rc = SLCL_ERR_CONN;
	}
	else if (strcmp(sqlstate, "SL001") == 0)
		*rc = SLCL_ERR_DOC_GONE;
	else
		*rc = SLCL_ERR_SERVER;
	return NULL;
}

int
slcli_col_i8(const PGresult *res, int row, int col, int64_t *out)
{
	const uint8_t *p;
	uint64_t	v = 0;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
		return -1;
	p = (const uint8_t *) PQgetvalue(res, row, col);
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	*out = (int64_t) v;
	return 0;
}

int
slcli_row_bytes(const PGresult *res, int row)
{
	int			n = 0;

	for (int j = 0; j < PQnfields(res); j++)
		n += PQgetlength(res, row, j);
	return n;
}

/* Copy a log id from a result, checking it. */
int
slcli_col_log_id(const PGresult *res, int row, int col, char out[SLCL_LOG_ID_MAX + 1])
{
	int			len;
	const char *p;

	if (PQgetisnull(res, row, col))
		return -1;
	len = PQgetlength(res, row, col);
	p = PQgetvalue(res, row, col);
	if (len < 1 || len > SLCL_LOG_ID_MAX)
		return -1;
	for (int i = 0; i < len; i++)
		if (p[i] <= ' ' || p[i] > '~')
			return -1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

/* The same for a read of a position, where 22023 says the position and
 * the log disagree. */
slcl_reason
slcli_position_reason(const char *sqlstate)
{
	slcl_reason r = slcli_reason_of(sqlstate);

	if (r == SLCL_DL_NONE && strcmp(sqlstate, "22023") == 0)
		r = SLCL_DL_INCONSISTENT;
	return r;
}

slcl_reason
slcli_reason_of(const char *sqlstate)
{
	if (strcmp(sqlstate, "SL003") == 0)
		return SLCL_DL_COLLECTED;
	if (strcmp(sqlstate, "SL002") == 0)
		return SLCL_DL_UNKNOWN_LOG;
	if (strcmp(sqlstate, "SL004") == 0)
		return SLCL_DL_AHEAD;
	if (strcmp(sqlstate, "SL006") == 0)
		return SLCL_DL_DIVERGED;
	return SLCL_DL_NONE;
}

/*
 * Report a position.  With chain (protocol version 2) the server checks it
 * (synclog.ack2); without (a download's target, which the client does not
 * hold yet, or a version 1 server) it is a plain synclog.ack.
 */
slcl_rc
slcli_ack_at(slcl_client *c, const char *log_id, int64_t lsn,
			 const uint8_t *chain)
{
	char		lsnbuf[32];
	const char *vals[5];
	int			lens[5] = {0, 0, 0, 0, SLCL_CHAIN_LEN};
	int			fmts[5] = {0, 0, 0, 0, 1};
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];

	if (!c->opt.ack)
		return SLCL_OK;
	snprintf(lsnbuf, sizeof(lsnbuf), "%lld", (long long) lsn);
	vals[0] = c->doc;
	vals[1] = c->client_id;
	vals[2] = log_id;
	vals[3] = lsnbuf;
	vals[4] = (const char *) chain;
	if (chain != NULL && c->proto >= 2)
		res = slcli_query(c, "SELECT synclog.ack2($1, $2, $3, $4::bigint, $5::bytea)",
						  5, vals, lens, fmts, &rc, st);
	else
		res = slcli_query(c, "SELECT synclog.ack($1, $2, $3, $4::bigint)", 4, vals, NULL, NULL, &rc, st);
	if (res == NULL)
	{
		if (rc == SLCL_ERR_CONN || rc == SLCL_ERR_DOC_GONE)
			return rc;
		/* An ack is advice to the server; the read loop finds real trouble. */
		slcli_emit_simple(c, SLCL_EV_WARNING, "ack of log %s lsn %lld failed (%s): %s",
						  log_id, (long long) lsn, st, c->err);
		return SLCL_OK;
	}
	PQclear(res);
	c->stats.acks++;
	snprintf(c->acked_log, sizeof(c->acked_log), "%s", log_id);
	c->acked_lsn = lsn;
	c->acked_at = slcli_now_s();
	return SLCL_OK;
}

/* Ack if the log changed, or (position durable) the interval has passed. */
slcl_rc
slcli_maybe_ack(slcl_client *c, int force)
{
	if (!c->opt.ack || !c->committed.have || c->downloading)
		return SLCL_OK;
	if (!force && strcmp(c->acked_log, c->committed.log_id) == 0 &&
		slcli_now_s() - c->acked_at < c->opt.ack_interval_ms / 1000.0)
		return SLCL_OK;
	return slcli_ack_at(c, c->committed.log_id, c->committed.lsn,
						c->committed.chain_known ? c->committed.chain : NULL);
}

slcl_rc
slcl_ack(slcl_client *c)
{
	if (!c->committed.have || c->downloading)
		return slcli_fail(c, SLCL_ERR_STATE, "no complete local state to acknowledge");
	return slcli_maybe_ack(c, 1);
}

slcl_rc
slcl_wait(slcl_client *c, int timeout_ms, int *notified)
{
	struct pollfd pfd;
	PGnotify   *nf;
	int			got = 0;
	slcl_rc		rc;

	if (notified)
		*notified = 0;
	rc = slcli_ensure_conn(c);
	if (rc != SLCL_OK)
		return rc;
	if (!PQconsumeInput(c->conn))
		goto broken;
	while ((nf = PQnotifies(c->conn)) != NULL)
	{
		got = 1;
		PQfreemem(nf);
	}
	if (!got)
	{
		pfd.fd = PQsocket(c->conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, timeout_ms) > 0)
		{
			if (!PQconsumeInput(c->conn))
				goto broken;
			while ((nf = PQnotifies(c->conn)) != NULL)
			{
				got = 1;
				PQfreemem(nf);
			}
		}
	}
	if (notified)
		*notified = got;
	return SLCL_OK;
broken:
	slcli_fail(c, SLCL_ERR_CONN, "connection lost: %s", PQerrorMessage(c->conn));
	slcli_drop_conn(c);
	return SLCL_ERR_CONN;
}
