/*
 * client_smoke.c - a program built against the installed synclog-client
 * package, run by test/deb/run.sh.
 *
 *   client_smoke DSN DOC DIR
 *
 * Includes <synclog/synclog_client.h> and links libsynclog_client.a from the
 * system's default paths (no -I, no -L), with -lpq -lxxhash -lsqlite3 -lzstd, so that it only
 * builds if the package put the headers and the library where a user's
 * compiler looks.  Then it uses them: follows DOC into a new replica in DIR
 * (an initial download or catch-up, and the log's entries), rotates DOC with
 * synclog.compact over its own libpq connection, and follows it again, which
 * must switch logs by the end-log marker without a second download.  It
 * prints
 *
 *   log=L lsn=N hash=H switches=N downloads=N
 *
 * for the script to compare with the server's synclog.current_log(DOC).
 *
 * Owns: nothing beyond its run; DIR is the caller's.
 * Must never: include headers or link objects from the source tree (it
 * tests the package).
 *
 * Exit status: 0 ok, 1 any failure (message on stderr).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>
#include <synclog/synclog_client.h>

static int
sync_once(slcl_client *c, const char *when)
{
	if (slcl_sync(c) != SLCL_OK)
	{
		fprintf(stderr, "client_smoke: sync %s failed: %s\n", when, slcl_errmsg(c));
		return 0;
	}
	return 1;
}

static int
compact(const char *dsn, const char *doc)
{
	PGconn	   *conn = PQconnectdb(dsn);
	const char *params[1] = {doc};
	PGresult   *res;
	int			ok;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "client_smoke: could not connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return 0;
	}
	res = PQexecParams(conn, "SELECT synclog.compact($1)", 1, NULL, params,
					   NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "client_smoke: synclog.compact failed: %s", PQerrorMessage(conn));
	PQclear(res);
	PQfinish(conn);
	return ok;
}

int
main(int argc, char **argv)
{
	slcl_options o;
	slcl_client *c;
	const slcl_stats *s;
	const char *log_id;
	int64_t		lsn;
	uint8_t		hash[SLC_HASH_LEN];
	int			ok;

	if (argc != 4)
	{
		fprintf(stderr, "usage: client_smoke DSN DOC DIR\n");
		return 1;
	}
	slcl_options_init(&o);
	o.dsn = argv[1];
	o.doc = argv[2];
	o.dir = argv[3];
	o.ack = 0;
	if (slcl_open(&o, &c) != SLCL_OK)
	{
		fprintf(stderr, "client_smoke: could not open the replica: %s\n", slcl_open_error());
		return 1;
	}
	ok = sync_once(c, "before the rotation") && compact(o.dsn, o.doc) &&
		sync_once(c, "after the rotation");
	if (ok && !slcl_position(c, &log_id, &lsn))
	{
		fprintf(stderr, "client_smoke: the replica has no position after syncing\n");
		ok = 0;
	}
	if (ok)
	{
		s = slcl_get_stats(c);
		slcl_hash(c, hash);
		printf("log=%s lsn=%" PRId64 " hash=", log_id, lsn);
		for (int i = 0; i < SLC_HASH_LEN; i++)
			printf("%02x", hash[i]);
		printf(" switches=%" PRId64 " downloads=%" PRId64 "\n",
			   s->switches_marker, s->downloads);
	}
	slcl_close(c);
	return ok ? 0 : 1;
}
