/*
 * readlog.c - the benchmarks' libpq client: pages through a log, a plain
 * table or a snapshot the way a sync client would, receives every byte
 * (binary results) and discards it.
 *
 *   readlog MODE [options]
 *
 * MODE:
 *   read        synclog.read(doc, log, after) from the log's base LSN until
 *               a page comes back empty (default page size)
 *   plain-paged SELECT lsn, delta FROM <table> WHERE lsn > $1 ORDER BY lsn
 *               LIMIT <page>, until a page comes back empty
 *   plain-all   SELECT lsn, delta FROM <table> ORDER BY lsn (one statement)
 *   snapshot    synclog.snapshot(doc, log, after_key, <page>) from the start
 *               until a page comes back short (-f: another function with
 *               the same arguments and result)
 *   plain-kv    SELECT key, value FROM <table> WHERE key > $1 ORDER BY key
 *               LIMIT <page>, until a page comes back short
 *   pgq         a PgQ consumer: repositions consumer -c of queue -t at tick
 *               -a (pgq.register_consumer_at, before the clock starts), then
 *               pgq.next_batch / pgq.get_batch_events (ev_id, ev_data) /
 *               pgq.finish_batch until next_batch returns NULL
 *
 * Options: -d doc  -l log_id  -a after_lsn (pgq: tick)  -t table (pgq: queue)
 *          -f function (snapshot)
 *          -c consumer  -p page_rows
 *          -n passes -w   (all modes but pgq: do it all that many times in
 *          the one connection, after one untimed pass with -w; the figures
 *          printed are the totals)
 *          -P pidfile -s sleep_ms   (write the backend pid to pidfile, then
 *          sleep before starting, so that a sampler can take a baseline)
 *          -C     also print the CPU seconds of the server backend (from
 *          /proc/<pid>/stat: the server must run on this machine) and of
 *          this process during the counted passes
 *
 * Connection: the usual PG* environment variables.
 * Prints one line: "<bytes> <rows> <pages> <seconds>", with -C
 * "<bytes> <rows> <pages> <seconds> <server CPU s> <client CPU s>".
 * Exits 1 on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include <libpq-fe.h>

static PGconn *conn;

static void
die(const char *what, PGresult *res)
{
	fprintf(stderr, "readlog: %s: %s", what,
			res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
	if (res)
		PQclear(res);
	PQfinish(conn);
	exit(1);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Binary int8 to host order. */
static long long
get_int8(const PGresult *res, int row, int col)
{
	const unsigned char *p = (const unsigned char *) PQgetvalue(res, row, col);
	unsigned long long v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (long long) v;
}

/* CPU seconds (user + system) of process pid so far, -1 if unknown. */
static double
proc_cpu(int pid)
{
	char		path[64];
	char		buf[1024];
	FILE	   *f;
	size_t		n;
	char	   *p;
	unsigned long utime,
				stime;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* fields after the command name, which is in parentheses */
	if ((p = strrchr(buf, ')')) == NULL ||
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			   &utime, &stime) != 2)
		return -1;
	return (double) (utime + stime) / sysconf(_SC_CLK_TCK);
}

static double
self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
count_bytes(const PGresult *res, long long *bytes)
{
	int			n = PQntuples(res);
	int			nf = PQnfields(res);

	for (int i = 0; i < n; i++)
		for (int j = 0; j < nf; j++)
			*bytes += PQgetlength(res, i, j);
}

int
main(int argc, char **argv)
{
	const char *mode;
	const char *doc = NULL;
	const char *log_id = NULL;
	const char *table = NULL;
	const char *pidfile = NULL;
	const char *consumer = NULL;
	const char *snap_fn = "synclog.snapshot";
	long long	after = 0;
	int			page = 1000;
	int			sleep_ms = 0;
	int			passes = 1;
	int			warm = 0;
	int			cpu = 0;
	double		scpu0 = 0,
				ccpu0 = 0;
	long long	after0;
	int			opt;
	long long	bytes = 0;
	long long	rows = 0;
	long long	pages = 0;
	double		t0;
	char		sql[512];
	PGresult   *res;

	if (argc < 2)
	{
		fprintf(stderr, "usage: readlog MODE [-d doc] [-l log] [-a after] [-t table] [-p page] [-P pidfile] [-s sleep_ms]\n");
		return 1;
	}
	mode = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "d:l:a:t:c:f:p:P:s:n:wC")) != -1)
	{
		switch (opt)
		{
			case 'd': doc = optarg; break;
			case 'l': log_id = optarg; break;
			case 'a': after = atoll(optarg); break;
			case 't': table = optarg; break;
			case 'c': consumer = optarg; break;
			case 'f': snap_fn = optarg; break;
			case 'p': page = atoi(optarg); break;
			case 'P': pidfile = optarg; break;
			case 's': sleep_ms = atoi(optarg); break;
			case 'n': passes = atoi(optarg); break;
			case 'w': warm = 1; break;
			case 'C': cpu = 1; break;
			default: return 1;
		}
	}

	conn = PQconnectdb("");
	if (PQstatus(conn) != CONNECTION_OK)
		die("connect", NULL);

	if (pidfile)
	{
		FILE	   *f = fopen(pidfile, "w");

		if (!f)
		{
			perror(pidfile);
			return 1;
		}
		fprintf(f, "%d\n", PQbackendPID(conn));
		fclose(f);
	}
	if (sleep_ms > 0)
		usleep((useconds_t) sleep_ms * 1000);

	if (strcmp(mode, "pgq") == 0)
	{
		char		abuf[32];
		const char *params[3] = {table, consumer, abuf};

		if (!table || !consumer)
		{
			fprintf(stderr, "readlog: pgq needs -t queue and -c consumer\n");
			return 1;
		}
		snprintf(abuf, sizeof(abuf), "%lld", after);
		res = PQexecParams(conn, "SELECT pgq.register_consumer_at($1, $2, $3::bigint)",
						   3, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			die("pgq.register_consumer_at", res);
		PQclear(res);
	}

	if (strcmp(mode, "pgq") == 0 && (passes != 1 || warm))
	{
		fprintf(stderr, "readlog: pgq reads its queue once (-n, -w do not apply)\n");
		return 1;
	}
	after0 = after;
	t0 = now();
	for (int pass = warm ? -1 : 0; pass < passes; pass++)
	{
		if (pass == 0)
		{
			/* the warm-up pass does not count */
			bytes = rows = pages = 0;
			t0 = now();
			if (cpu)
			{
				scpu0 = proc_cpu(PQbackendPID(conn));
				ccpu0 = self_cpu();
			}
		}
		after = after0;
		if (strcmp(mode, "read") == 0)
		{
			char		abuf[32];
			const char *params[3] = {doc, log_id, abuf};

			if (!doc || !log_id)
			{
				fprintf(stderr, "readlog: read needs -d and -l\n");
				return 1;
			}
			for (;;)
			{
				int			n;

				snprintf(abuf, sizeof(abuf), "%lld", after);
				res = PQexecParams(conn,
								   "SELECT * FROM synclog.read($1, $2, $3::bigint)",
								   3, NULL, params, NULL, NULL, 1);
				if (PQresultStatus(res) != PGRES_TUPLES_OK)
					die("synclog.read", res);
				n = PQntuples(res);
				pages++;
				if (n == 0)
				{
					PQclear(res);
					break;
				}
				count_bytes(res, &bytes);
				rows += n;
				after = get_int8(res, n - 1, 0);
				/* A sealed log ends with its end marker. */
				if (strcmp(PQgetvalue(res, n - 1, 1), "end") == 0)
				{
					PQclear(res);
					break;
				}
				PQclear(res);
			}
		}
		else if (strcmp(mode, "plain-paged") == 0)
		{
			char		abuf[32];
			const char *params[1] = {abuf};

			snprintf(sql, sizeof(sql),
					 "SELECT lsn, delta FROM %s WHERE lsn > $1::bigint ORDER BY lsn LIMIT %d",
					 table, page);
			for (;;)
			{
				int			n;

				snprintf(abuf, sizeof(abuf), "%lld", after);
				res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 1);
				if (PQresultStatus(res) != PGRES_TUPLES_OK)
					die("plain-paged", res);
				n = PQntuples(res);
				pages++;
				if (n == 0)
				{
					PQclear(res);
					break;
				}
				count_bytes(res, &bytes);
				rows += n;
				after = get_int8(res, n - 1, 0);
				PQclear(res);
			}
		}
		else if (strcmp(mode, "plain-all") == 0)
		{
			snprintf(sql, sizeof(sql), "SELECT lsn, delta FROM %s ORDER BY lsn", table);
			res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 1);
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
				die("plain-all", res);
			count_bytes(res, &bytes);
			rows = PQntuples(res);
			pages = 1;
			PQclear(res);
		}
		else if (strcmp(mode, "snapshot") == 0 || strcmp(mode, "plain-kv") == 0)
		{
			int			is_snap = strcmp(mode, "snapshot") == 0;
			char	   *key = NULL;
			int			keylen = 0;

			if (is_snap)
				snprintf(sql, sizeof(sql),
						 "SELECT key, value FROM %s($1, $2, $3::bytea, %d)",
						 snap_fn, page);
			else
				snprintf(sql, sizeof(sql),
						 "SELECT key, value FROM %s WHERE key > coalesce($1::bytea, ''::bytea) "
						 "ORDER BY key LIMIT %d", table, page);
			for (;;)
			{
				const char *params[3];
				int			lengths[3] = {0, 0, keylen};
				int			formats[3] = {0, 0, 1};
				int			n;

				if (is_snap)
				{
					params[0] = doc;
					params[1] = log_id;
					params[2] = key;
					res = PQexecParams(conn, sql, 3, NULL, params, lengths, formats, 1);
				}
				else
				{
					params[0] = key;
					lengths[0] = keylen;
					formats[0] = 1;
					res = PQexecParams(conn, sql, 1, NULL, params, lengths, formats, 1);
				}
				if (PQresultStatus(res) != PGRES_TUPLES_OK)
					die(mode, res);
				n = PQntuples(res);
				pages++;
				count_bytes(res, &bytes);
				rows += n;
				if (n > 0)
				{
					keylen = PQgetlength(res, n - 1, 0);
					free(key);
					key = malloc(keylen + 1);
					memcpy(key, PQgetvalue(res, n - 1, 0), keylen);
				}
				PQclear(res);
				if (n < page)
					break;
			}
			free(key);
		}
		else if (strcmp(mode, "pgq") == 0)
		{
			const char *params[2] = {table, consumer};

			for (;;)
			{
				char		batch[32];
				const char *bparam[1] = {batch};

				res = PQexecParams(conn, "SELECT pgq.next_batch($1, $2)",
								   2, NULL, params, NULL, NULL, 0);
				if (PQresultStatus(res) != PGRES_TUPLES_OK)
					die("pgq.next_batch", res);
				if (PQgetisnull(res, 0, 0))
				{
					PQclear(res);
					break;
				}
				snprintf(batch, sizeof(batch), "%s", PQgetvalue(res, 0, 0));
				PQclear(res);
				res = PQexecParams(conn,
								   "SELECT ev_id, ev_data FROM pgq.get_batch_events($1::bigint)",
								   1, NULL, bparam, NULL, NULL, 1);
				if (PQresultStatus(res) != PGRES_TUPLES_OK)
					die("pgq.get_batch_events", res);
				count_bytes(res, &bytes);
				rows += PQntuples(res);
				pages++;
				PQclear(res);
				res = PQexecParams(conn, "SELECT pgq.finish_batch($1::bigint)",
								   1, NULL, bparam, NULL, NULL, 0);
				if (PQresultStatus(res) != PGRES_TUPLES_OK)
					die("pgq.finish_batch", res);
				PQclear(res);
			}
		}
		else
		{
			fprintf(stderr, "readlog: unknown mode %s\n", mode);
			return 1;
		}
	}

	if (cpu)
	{
		double		secs = now() - t0;
		double		scpu = proc_cpu(PQbackendPID(conn));

		printf("%lld %lld %lld %.6f %.2f %.2f\n", bytes, rows, pages, secs,
			   scpu >= 0 && scpu0 >= 0 ? scpu - scpu0 : -1.0, self_cpu() - ccpu0);
	}
	else
		printf("%lld %lld %lld %.6f\n", bytes, rows, pages, now() - t0);
	PQfinish(conn);
	return 0;
}
