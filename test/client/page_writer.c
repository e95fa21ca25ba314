/*
 * page_writer.c - a writer of the page-store profile, for tests: runs a
 * real SQLite workload on a database file and, after every SQLite
 * transaction, appends the pages it changed to a synclog document, one
 * entry per transaction (key: the page number, 4 bytes big-endian, from 1;
 * value: the page), with deletions of the pages past the end when the file
 * shrank.
 *
 *   page_writer DSN DOC DBFILE ROUNDS [SEED [PAUSE_MS]]
 *
 * The workload (rollback-journal mode, 4 KiB pages) cycles through: a
 * table and an index created, rows inserted, rows updated, rows with
 * values larger than a page (overflow pages), an index dropped and built
 * again, rows deleted, then a VACUUM that shrinks the file.  Prints one
 * line per transaction: "round N lsn L pages P deleted D size S".
 *
 * Owns: nothing of the library; it only uses the shared core's delta
 * encoder and libpq.
 * Must never: append a transaction's pages before SQLite committed it, or
 * leave out a page that differs from what the document holds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "synclog_core.h"

static uint8_t *prev;			/* the file as the document holds it */
static size_t prev_len;

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "page_writer: %s: %s\n", what, detail);
	exit(1);
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	struct stat st;
	uint8_t    *b;

	if (f == NULL || fstat(fileno(f), &st) != 0)
		die("could not read", path);
	b = malloc((size_t) st.st_size + 1);
	if (b == NULL || fread(b, 1, (size_t) st.st_size, f) != (size_t) st.st_size)
		die("could not read", path);
	fclose(f);
	*len = (size_t) st.st_size;
	return b;
}

static void
exec_sql(sqlite3 *db, const char *sql)
{
	char	   *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		die(sql, err ? err : "?");
}

/* One transaction of the workload, by round; 1 if a VACUUM should follow. */
static int
workload(sqlite3 *db, int round, unsigned *seed)
{
	char		sql[512];
	int			kind = round % 8;

	if (round == 0)
	{
		exec_sql(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, body BLOB)");
		return 0;
	}
	exec_sql(db, "BEGIN");
	switch (kind)
	{
		case 1:
		case 5:
			for (int i = 0; i < 200; i++)
			{
				snprintf(sql, sizeof(sql), "INSERT INTO t (name, body) VALUES ('n%u', randomblob(%u))",
						 rand_r(seed) % 100000, 20 + rand_r(seed) % 300);
				exec_sql(db, sql);
			}
			break;
		case 2:
			snprintf(sql, sizeof(sql), "UPDATE t SET name = name || 'x', body = randomblob(%u) WHERE id %% 7 = %u",
					 50 + rand_r(seed) % 200, rand_r(seed) % 7);
			exec_sql(db, sql);
			break;
		case 3:
			/* rows larger than a page: overflow pages */
			for (int i = 0; i < 4; i++)
			{
				snprintf(sql, sizeof(sql), "INSERT INTO t (name, body) VALUES ('big', randomblob(%u))",
						 6000 + rand_r(seed) % 20000);
				exec_sql(db, sql);
			}
			break;
		case 4:
			exec_sql(db, "DROP INDEX IF EXISTS t_name");
			exec_sql(db, "CREATE INDEX t_name ON t (name)");
			break;
		case 6:
			snprintf(sql, sizeof(sql), "DELETE FROM t WHERE id %% 3 = %u OR name = 'big'", rand_r(seed) % 3);
			exec_sql(db, sql);
			break;
		case 7:
			exec_sql(db, "UPDATE t SET body = zeroblob(10) WHERE id % 5 = 0");
			break;
		default:
			exec_sql(db, "INSERT INTO t (name, body) VALUES ('tick', NULL)");
			break;
	}
	exec_sql(db, "COMMIT");
	return kind == 6;
}

/* change n: page pgno (its key written into keys), set to val or deleted */
static void
page_change(slc_change *ch, uint8_t *keys, size_t n, size_t pgno, const uint8_t *val, size_t psize)
{
	uint8_t    *k = keys + 4 * n;

	for (int b = 0; b < 4; b++)
		k[b] = (uint8_t) (pgno >> (24 - 8 * b));
	ch[n].key = k;
	ch[n].klen = 4;
	ch[n].val = val;
	ch[n].vlen = val ? (uint32_t) psize : 0;
	ch[n].is_delete = val == NULL;
}

/* Append what changed since `prev`; returns the entry's LSN (0: nothing). */
static long long
publish(PGconn *pg, const char *doc, const char *path, int round, size_t psize)
{
	size_t		len;
	uint8_t    *cur = read_file(path, &len);
	size_t		npages = len / psize,
				nprev = prev_len / psize;
	size_t		n = 0;
	slc_change *ch = calloc(npages + nprev + 1, sizeof(slc_change));
	uint8_t    *keys = malloc(4 * (npages + nprev + 1));
	size_t		dlen;
	uint8_t    *delta;
	const char *vals[2];
	int			lens[2],
				fmts[2] = {0, 1};
	PGresult   *res;
	long long	lsn = 0;
	size_t		deleted = 0;

	if (ch == NULL || keys == NULL || len % psize != 0)
		die("bad file size or out of memory", path);
	for (size_t i = 0; i < npages; i++)
	{
		if (i < nprev && memcmp(cur + i * psize, prev + i * psize, psize) == 0)
			continue;
		page_change(ch, keys, n++, i + 1, cur + i * psize, psize);
	}
	for (size_t i = npages; i < nprev; i++)
	{
		page_change(ch, keys, n++, i + 1, NULL, psize);
		deleted++;
	}
	if (n > 0)
	{
		dlen = slc_delta_encoded_size(ch, (uint32_t) n);
		delta = malloc(dlen);
		if (delta == NULL)
			die("out of memory", "delta");
		slc_delta_encode(ch, (uint32_t) n, delta);
		vals[0] = doc;
		vals[1] = (const char *) delta;
		lens[0] = 0;
		lens[1] = (int) dlen;
		res = PQexecParams(pg, "SELECT synclog.append_delta($1, $2)", 2, NULL, vals, lens, fmts, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			die("append_delta", PQerrorMessage(pg));
		lsn = atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
		free(delta);
	}
	printf("round %d lsn %lld pages %zu deleted %zu size %zu\n", round, lsn, n - deleted, deleted, len);
	fflush(stdout);
	free(prev);
	prev = cur;
	prev_len = len;
	free(ch);
	free(keys);
	return lsn;
}

int
main(int argc, char **argv)
{
	PGconn	   *pg;
	sqlite3    *db;
	int			rounds;
	unsigned	seed;
	int			pause_ms;

	if (argc < 5)
	{
		fprintf(stderr, "usage: page_writer DSN DOC DBFILE ROUNDS [SEED [PAUSE_MS]]\n");
		return 2;
	}
	rounds = atoi(argv[4]);
	seed = argc > 5 ? (unsigned) atoi(argv[5]) : 1;
	pause_ms = argc > 6 ? atoi(argv[6]) : 0;
	pg = PQconnectdb(argv[1]);
	if (PQstatus(pg) != CONNECTION_OK)
		die("could not connect", PQerrorMessage(pg));
	unlink(argv[3]);
	if (sqlite3_open(argv[3], &db) != SQLITE_OK)
		die("could not open", argv[3]);
	exec_sql(db, "PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE; PRAGMA auto_vacuum = NONE");
	prev = malloc(1);
	prev_len = 0;
	for (int r = 0; r < rounds; r++)
	{
		if (workload(db, r, &seed))
		{
			publish(pg, argv[2], argv[3], r, 4096);
			exec_sql(db, "VACUUM");	/* a transaction of its own: the file shrinks */
		}
		publish(pg, argv[2], argv[3], r, 4096);
		if (pause_ms > 0)
			usleep((useconds_t) pause_ms * 1000);
	}
	sqlite3_close(db);
	PQfinish(pg);
	free(prev);
	return 0;
}
