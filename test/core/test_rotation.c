/*
 * test_rotation.c
 *
 * Property test of the server's rotation: the real fold of compact.c,
 * driven through SQL, against the core's own forward fold.  For random
 * logs (a deterministic PRNG, several seeds; a small key space, so that
 * keys are rewritten and deleted across rotations, and client watermarks)
 * it appends the entries with synclog.append_delta, applies each one to an
 * slc_state as well (slc_state_apply_entry: oldest first, one key at a
 * time, sharing no code with the server's newest-first fold over stored
 * versions), rotates now and then, and after each rotation checks that
 * the new log starts at the last LSN and that its snapshot hash, the hash
 * recomputed from its pages (synclog.recompute_hash), its data items
 * (synclog.snapshot) and its watermarks (synclog.snapshot_clients) are
 * exactly the model's.  The range hashes (PROTOCOL.md 11a) are checked
 * against the model's items summed per bucket, at every new log's base
 * (kept incrementally by the rotations, in partial and full rows) and at
 * the head before each rotation (the base's moved by the entries), and so
 * are the items of three random buckets there (synclog.range).  Now and
 * then synclog.gc() collects old logs in between, so that later
 * rotations fold onto what collection left.
 *
 * Rotations come in four shapes: one pass; and, when the log is long
 * enough for a first pass (more than 64 entries), held in the middle of
 * pass 1 while more entries arrive, which then make the tail; or a second
 * pass; or a second pass held too, and then a tail.  A rotation is held
 * without a test hook: another connection inserts, uncommitted, the very
 * state version the pass is about to write (synclog.kv's unique index),
 * and the pass waits for that transaction (pg_blocking_pids shows when);
 * its rollback lets the rotation go on.  Keys written before the log,
 * rewritten in one pass and deleted in the next are common, which is the
 * rare branch of the fold (a tombstone kept over an older value).
 *
 * Usage: test_rotation CONNINFO   (a database with synclog installed; run
 * by test/t/031_rotation_props.pl).  SLC_ROT_SEEDS (default 6) seeds of
 * SLC_ROT_ROUNDS (default 14) rotations each; SLC_ROT_SEED=N starts at
 * seed N (to replay a failure, with SLC_ROT_SEEDS=1).  Prints one line per
 * seed and a closing "rotation: N passed, M failed"; exits non-zero on
 * failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "synclog_core.h"

#define N_KEYS			16
#define N_CLIENTS		3
#define MAX_CHANGES		4
#define VAL_MAX			60
#define TAIL			64		/* compact.c: CATCHUP_TAIL */

static int	failures;			/* failed checks of the current seed */
static unsigned long cur_seed;
static int	cur_round;

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			if (failures++ < 5) \
			{ \
				fprintf(stderr, "    seed %lu round %d: check failed: %s: ", \
						cur_seed, cur_round, #cond); \
				fprintf(stderr, __VA_ARGS__); \
				fputc('\n', stderr); \
			} \
		} \
	} while (0)

/* splitmix64: the same sequence on every platform. */
static uint64_t
next_rand(uint64_t *st)
{
	uint64_t	z = (*st += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static uint32_t
rand_below(uint64_t *st, uint32_t n)
{
	return (uint32_t) (next_rand(st) % n);
}

/* A failure of the harness itself (not of a checked property): give up. */
static void
die(const char *what, PGconn *conn)
{
	fprintf(stderr, "test_rotation: seed %lu round %d: %s: %s\n", cur_seed,
			cur_round, what, conn ? PQerrorMessage(conn) : "");
	exit(2);
}

/* Run a statement with text parameters; the result must be as expected. */
static PGresult *
run(PGconn *conn, ExecStatusType expect, const char *sql, int n,
	const char *const *params)
{
	PGresult   *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != expect)
		die(sql, conn);
	return res;
}

static void
run_cmd(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PQclear(run(conn, PGRES_COMMAND_OK, sql, n, params));
}

/* One text value of a one-row query. */
static char *
value1(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult   *res = run(conn, PGRES_TUPLES_OK, sql, n, params);
	char	   *v;

	if (PQntuples(res) != 1)
		die(sql, conn);
	v = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

/* Bytes of a bytea in hex text output ("\x..."); *len is their number. */
static uint8_t *
unhex(const char *s, size_t *len)
{
	size_t		n = strlen(s);
	uint8_t    *out;

	if (n < 2 || s[0] != '\\' || s[1] != 'x' || n % 2 != 0)
	{
		fprintf(stderr, "test_rotation: not a hex bytea: %s\n", s);
		exit(2);
	}
	*len = (n - 2) / 2;
	out = malloc(*len + 1);
	for (size_t i = 0; i < *len; i++)
	{
		unsigned int b;

		sscanf(s + 2 + 2 * i, "%2x", &b);
		out[i] = (uint8_t) b;
	}
	return out;
}

/* The workload of one seed. */
typedef struct Work
{
	PGconn	   *a;				/* appends, checks */
	PGconn	   *rot;			/* the rotation (asynchronous when held) */
	PGconn	   *blk[2];			/* hold a version a pass is about to write */
	uint64_t	rng;
	char		doc[32];
	char		doc_id[32];
	slc_state  *model;			/* the forward fold of every entry */
	int64_t		lsn;			/* the model's last LSN */
	int64_t		base;			/* base LSN of the active log */
	int64_t		seq[N_CLIENTS];
	uint8_t		last_key;		/* a key the last entry wrote a value to */
} Work;

static const char *const client_ids[N_CLIENTS] = {"phone", "tablet", "laptop"};

/*
 * Append one random entry through SQL and to the model.  With
 * write_last, the entry's first change writes a value (the version a pass
 * then writes for it is what a blocker holds).
 */
static void
append_one(Work *w, int write_last)
{
	slc_change	ch[MAX_CHANGES];
	uint8_t		keys[MAX_CHANGES];
	uint8_t		vals[MAX_CHANGES][VAL_MAX];
	uint32_t	n = 1 + rand_below(&w->rng, MAX_CHANGES);
	uint8_t    *delta;
	size_t		dlen;
	int			client = (int) rand_below(&w->rng, N_CLIENTS + 2) - 2;	/* <0: none */
	char		seq[24];
	char		expect[24];
	const char *params[4];
	int			lengths[4] = {0, 0, 0, 0};
	int			formats[4] = {0, 1, 0, 0};
	PGresult   *res;
	slc_status	st;

	for (uint32_t i = 0; i < n; i++)
	{
		uint8_t		k;
		int			dup;

		do
		{
			k = (uint8_t) rand_below(&w->rng, N_KEYS);
			dup = 0;
			for (uint32_t j = 0; j < i; j++)
				dup |= keys[j] == k;
		} while (dup);
		keys[i] = k;
		ch[i].key = &keys[i];
		ch[i].klen = 1;
		ch[i].is_delete = !(write_last && i == 0) && rand_below(&w->rng, 3) == 0;
		ch[i].vlen = ch[i].is_delete ? 0 : rand_below(&w->rng, VAL_MAX);
		for (uint32_t b = 0; b < ch[i].vlen; b++)
			vals[i][b] = (uint8_t) next_rand(&w->rng);
		ch[i].val = ch[i].is_delete ? NULL : vals[i];
	}
	w->last_key = keys[0];
	dlen = slc_delta_encoded_size(ch, n);
	delta = malloc(dlen);
	slc_delta_encode(ch, n, delta);

	params[0] = w->doc;
	params[1] = (const char *) delta;
	lengths[1] = (int) dlen;
	params[2] = NULL;
	params[3] = NULL;
	if (client >= 0)
	{
		snprintf(seq, sizeof(seq), "%lld", (long long) ++w->seq[client]);
		params[2] = client_ids[client];
		params[3] = seq;
	}
	res = PQexecParams(w->a, "SELECT synclog.append_delta($1, $2, $3, $4)", 4, NULL,
					   params, lengths, formats, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		die("append_delta", w->a);
	w->lsn++;
	snprintf(expect, sizeof(expect), "%lld", (long long) w->lsn);
	CHECK(strcmp(PQgetvalue(res, 0, 0), expect) == 0, "append got LSN %s, expected %s",
		  PQgetvalue(res, 0, 0), expect);
	PQclear(res);

	st = slc_state_apply_entry(w->model, delta, dlen, w->lsn,
							   client >= 0 ? client_ids[client] : NULL,
							   client >= 0 ? strlen(client_ids[client]) : 0,
							   client >= 0 ? w->seq[client] : 0);
	if (st != SLC_OK)
		die(slc_status_message(st), NULL);
	free(delta);
}

static void
append_n(Work *w, int n, int write_last)
{
	for (int i = 0; i < n; i++)
		append_one(w, write_last && i == n - 1);
}

/*
 * Hold the version (ns 1, last_key, lsn) of the document: blocker b
 * inserts it in an open transaction.
 */
static void
hold(Work *w, int b)
{
	char		key[8];
	char		lsn[24];
	const char *params[3] = {w->doc_id, key, lsn};

	snprintf(key, sizeof(key), "\\x%02x", w->last_key);
	snprintf(lsn, sizeof(lsn), "%lld", (long long) w->lsn);
	run_cmd(w->blk[b], "BEGIN", 0, NULL);
	run_cmd(w->blk[b], "INSERT INTO synclog.kv (doc_id, ns, key, lsn, kind) "
			"VALUES ($1, 1, $2::bytea, $3, 'd')", 3, params);
}

static void
release(Work *w, int b)
{
	run_cmd(w->blk[b], "ROLLBACK", 0, NULL);
}

/* Wait until the rotation waits for blocker b's transaction. */
static void
wait_blocked_by(Work *w, int b)
{
	char		rot_pid[16];
	char		blk_pid[16];
	const char *params[2] = {rot_pid, blk_pid};

	snprintf(rot_pid, sizeof(rot_pid), "%d", PQbackendPID(w->rot));
	snprintf(blk_pid, sizeof(blk_pid), "%d", PQbackendPID(w->blk[b]));
	for (int tries = 0;; tries++)
	{
		char	   *v = value1(w->a, "SELECT $2::int = ANY (pg_blocking_pids($1::int))",
							   2, params);
		int			blocked = strcmp(v, "t") == 0;

		free(v);
		if (blocked)
			return;
		if (tries > 60000)
			die("the rotation never waited for the blocker", NULL);
		usleep(1000);
	}
}

/* The rotation's result: the new log's id, or "" when it rotated nothing. */
static char *
rotation_result(Work *w)
{
	PGresult   *res = PQgetResult(w->rot);
	char	   *v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		die("compact", w->rot);
	v = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
	PQclear(res);
	while ((res = PQgetResult(w->rot)) != NULL)
		PQclear(res);
	return v;
}

/*
 * Rotate, in one of the four shapes (see the header); the log holds at
 * least one entry.  Returns the shape used.
 */
static int
rotate(Work *w)
{
	const char *params[1] = {w->doc};
	int			shape = w->lsn - w->base > TAIL ? (int) rand_below(&w->rng, 4) : 0;
	char	   *log;

	if (shape > 0)
	{
		/* The last entry of pass 1 writes the version blocker 0 holds. */
		append_n(w, 1, 1);
		hold(w, 0);
	}
	if (!PQsendQueryParams(w->rot, "SELECT synclog.compact($1)", 1, NULL, params,
						   NULL, NULL, 0))
		die("compact", w->rot);
	if (shape > 0)
	{
		wait_blocked_by(w, 0);
		if (shape == 1)
			append_n(w, 1 + (int) rand_below(&w->rng, TAIL - 1), 0);
		else
		{
			/* More than a tail: pass 2, whose last entry blocker 1 may hold. */
			append_n(w, TAIL + 1 + (int) rand_below(&w->rng, 40), shape == 3);
			if (shape == 3)
				hold(w, 1);
		}
		release(w, 0);
		if (shape == 3)
		{
			wait_blocked_by(w, 1);
			append_n(w, 1 + (int) rand_below(&w->rng, TAIL - 1), 0);
			release(w, 1);
		}
	}
	log = rotation_result(w);
	CHECK(log[0] != '\0', "the rotation rotated nothing");
	free(log);
	return shape;
}

/* Visitor state: count the model's items per namespace. */
typedef struct Counts
{
	long		data;
	long		clients;
} Counts;

static int
count_item(void *arg, uint8_t ns, const uint8_t *key, size_t klen,
		   const uint8_t *val, size_t vlen)
{
	Counts	   *c = (Counts *) arg;

	(void) key;
	(void) klen;
	(void) val;
	(void) vlen;
	if (ns == SLC_NS_DATA)
		c->data++;
	else
		c->clients++;
	return 0;
}

/* The new active log against the model. */
static void
check_log(Work *w)
{
	const char *params[2] = {w->doc, NULL};
	PGresult   *res;
	char	   *log_id;
	uint8_t		want[SLC_HASH_LEN];
	uint8_t    *got;
	size_t		glen;
	Counts		counts = {0, 0};

	res = run(w->a, PGRES_TUPLES_OK,
			  "SELECT log_id, base_lsn, snapshot_hash, synclog.recompute_hash($1, log_id) "
			  "FROM synclog.current_log($1)", 1, params);
	log_id = strdup(PQgetvalue(res, 0, 0));
	w->base = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	CHECK(w->base == w->lsn, "the new log starts at %lld, the last entry is %lld",
		  (long long) w->base, (long long) w->lsn);
	slc_hash_serialize(slc_state_hash(w->model), want);
	got = unhex(PQgetvalue(res, 0, 2), &glen);
	CHECK(glen == SLC_HASH_LEN && memcmp(got, want, SLC_HASH_LEN) == 0,
		  "the snapshot hash differs from the model's");
	free(got);
	got = unhex(PQgetvalue(res, 0, 3), &glen);
	CHECK(glen == SLC_HASH_LEN && memcmp(got, want, SLC_HASH_LEN) == 0,
		  "the hash recomputed from the snapshot differs from the model's");
	free(got);
	PQclear(res);

	slc_state_foreach(w->model, count_item, &counts);
	params[1] = log_id;
	res = run(w->a, PGRES_TUPLES_OK,
			  "SELECT key, value FROM synclog.snapshot($1, $2, NULL, 1000000)", 2, params);
	CHECK(PQntuples(res) == counts.data, "the snapshot has %d keys, the model %ld",
		  PQntuples(res), counts.data);
	for (int r = 0; r < PQntuples(res); r++)
	{
		size_t		klen,
					vlen,
					mlen;
		uint8_t    *key = unhex(PQgetvalue(res, r, 0), &klen);
		uint8_t    *val = unhex(PQgetvalue(res, r, 1), &vlen);
		const uint8_t *mval;

		CHECK(slc_state_get(w->model, SLC_NS_DATA, key, klen, &mval, &mlen) &&
			  mlen == vlen && (vlen == 0 || memcmp(mval, val, vlen) == 0),
			  "key %s differs from the model's", PQgetvalue(res, r, 0));
		free(key);
		free(val);
	}
	PQclear(res);

	res = run(w->a, PGRES_TUPLES_OK,
			  "SELECT client_id, client_seq, client_lsn FROM synclog.snapshot_clients($1, $2)",
			  2, params);
	CHECK(PQntuples(res) == counts.clients, "the snapshot has %d watermarks, the model %ld",
		  PQntuples(res), counts.clients);
	for (int r = 0; r < PQntuples(res); r++)
	{
		const char *id = PQgetvalue(res, r, 0);
		const uint8_t *wm;
		size_t		wlen;
		int64_t		seq = -1,
					lsn = -1;

		if (slc_state_get(w->model, SLC_NS_CLIENT, (const uint8_t *) id, strlen(id), &wm, &wlen) &&
			wlen == SLC_WATERMARK_LEN)
			slc_watermark_decode(wm, &seq, &lsn);
		CHECK(seq == strtoll(PQgetvalue(res, r, 1), NULL, 10) &&
			  lsn == strtoll(PQgetvalue(res, r, 2), NULL, 10),
			  "the watermark of %s differs from the model's", id);
	}
	PQclear(res);
	free(log_id);
}

/* slc_state_visit_fn: an item into its bucket's range hash. */
static int
bucket_item(void *arg, uint8_t ns, const uint8_t *key, size_t klen,
			const uint8_t *val, size_t vlen)
{
	slc_hash   *rh = (slc_hash *) arg;

	slc_hash_add(&rh[slc_bucket(ns, key, klen)], ns, key, klen, val, vlen);
	return 0;
}

/*
 * The range hashes of the current log at lsn (NULL: its base) against the
 * model's items summed per bucket, and the items of three random buckets
 * there (synclog.range) against the model's.
 */
static void
check_ranges(Work *w, const char *lsn)
{
	const char *params[7] = {w->doc, NULL, lsn, NULL, NULL, NULL, NULL};
	slc_hash   *rh = malloc(sizeof(slc_hash) * SLC_BUCKETS);
	PGresult   *res;
	char	   *log_id = value1(w->a, "SELECT log_id FROM synclog.current_log($1)", 1, params);
	int			nonempty = 0;
	int			pick[3];
	char		arr[64];
	int			want_items = 0;

	for (int b = 0; b < SLC_BUCKETS; b++)
		slc_hash_init(&rh[b]);
	slc_state_foreach(w->model, bucket_item, rh);
	for (int b = 0; b < SLC_BUCKETS; b++)
		nonempty += rh[b].count != 0;
	params[1] = log_id;
	res = run(w->a, PGRES_TUPLES_OK,
			  "SELECT bucket, hash FROM synclog.range_hashes($1, $2, $3::bigint)", 3, params);
	CHECK(PQntuples(res) == nonempty, "range_hashes at %s lists %d buckets, the model has %d",
		  lsn ? lsn : "the base", PQntuples(res), nonempty);
	for (int r = 0; r < PQntuples(res); r++)
	{
		int			b = atoi(PQgetvalue(res, r, 0));
		uint8_t		want[SLC_HASH_LEN];
		size_t		glen;
		uint8_t    *got = unhex(PQgetvalue(res, r, 1), &glen);

		slc_hash_serialize(&rh[b < 0 || b >= SLC_BUCKETS ? 0 : b], want);
		CHECK(glen == SLC_HASH_LEN && memcmp(got, want, SLC_HASH_LEN) == 0,
			  "the range hash of bucket %d at %s differs from the model's", b,
			  lsn ? lsn : "the base");
		free(got);
	}
	PQclear(res);

	for (int i = 0; i < 3; i++)
	{
		pick[i] = (int) rand_below(&w->rng, SLC_BUCKETS);
		/* a non-empty bucket when there is one */
		for (int j = 0; j < SLC_BUCKETS && rh[pick[i]].count == 0; j++)
			pick[i] = (pick[i] + 1) % SLC_BUCKETS;
	}
	for (int i = 0; i < 3; i++)
		if (i == 0 || (pick[i] != pick[0] && (i == 1 || pick[i] != pick[1])))
			want_items += (int) rh[pick[i]].count;
	snprintf(arr, sizeof(arr), "{%d,%d,%d}", pick[0], pick[1], pick[2]);
	params[2] = arr;
	params[3] = lsn;
	res = run(w->a, PGRES_TUPLES_OK,
			  "SELECT ns, key, value FROM synclog.range($1, $2, $3::integer[], "
			  "NULL, NULL, 1000000, $4::bigint)", 4, params);
	CHECK(PQntuples(res) == want_items, "range at %s of buckets %s has %d items, the model %d",
		  lsn ? lsn : "the base", arr, PQntuples(res), want_items);
	for (int r = 0; r < PQntuples(res); r++)
	{
		size_t		klen,
					vlen,
					mlen;
		uint8_t		ns = (uint8_t) atoi(PQgetvalue(res, r, 0));
		uint8_t    *key = unhex(PQgetvalue(res, r, 1), &klen);
		uint8_t    *val = unhex(PQgetvalue(res, r, 2), &vlen);
		const uint8_t *mval;

		CHECK(slc_state_get(w->model, ns, key, klen, &mval, &mlen) &&
			  mlen == vlen && (vlen == 0 || memcmp(mval, val, vlen) == 0),
			  "range item %s differs from the model's", PQgetvalue(res, r, 1));
		free(key);
		free(val);
	}
	PQclear(res);
	free(log_id);
	free(rh);
}

static PGconn *
connect_to(const char *conninfo)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
		die("connect", c);
	/* Old logs may go at once (each gc() below). */
	PQclear(run(c, PGRES_TUPLES_OK, "SELECT set_config('synclog.retention', '0', false)", 0, NULL));
	return c;
}

static void
run_seed(Work *w, unsigned long seed, int rounds, int shapes[4])
{
	const char *params[1] = {w->doc};
	char	   *v;

	cur_seed = seed;
	failures = 0;
	w->rng = seed * UINT64_C(0x2545F4914F6CDD1D) + 1;
	w->model = slc_state_new();
	w->lsn = 0;
	w->base = 0;
	memset(w->seq, 0, sizeof(w->seq));
	snprintf(w->doc, sizeof(w->doc), "rotation_%lu", seed);
	PQclear(run(w->a, PGRES_TUPLES_OK, "SELECT synclog.create_doc($1)", 1, params));
	v = value1(w->a, "SELECT doc_id FROM synclog.doc WHERE name = $1", 1, params);
	strncpy(w->doc_id, v, sizeof(w->doc_id) - 1);
	free(v);

	for (cur_round = 0; cur_round < rounds && failures == 0; cur_round++)
	{
		/* Mostly short logs, every third one long enough for a held rotation. */
		int			n = rand_below(&w->rng, 3) == 0 ? TAIL + 1 + (int) rand_below(&w->rng, 100)
			: 1 + (int) rand_below(&w->rng, 30);

		append_n(w, n, 0);
		{
			char		head[32];

			snprintf(head, sizeof(head), "%lld", (long long) w->lsn);
			check_ranges(w, head);
		}
		shapes[rotate(w)]++;
		check_log(w);
		check_ranges(w, NULL);
		if (rand_below(&w->rng, 3) == 0)
			PQclear(run(w->a, PGRES_TUPLES_OK, "SELECT synclog.gc()", 0, NULL));
	}
	PQclear(run(w->a, PGRES_TUPLES_OK, "SELECT synclog.drop_doc($1)", 1, params));
	slc_state_free(w->model);
}

int
main(int argc, char **argv)
{
	Work		w;
	const char *s;
	unsigned long first = 1,
				seeds = 6;
	int			rounds = 14;
	int			passed = 0,
				failed = 0;
	int			shapes[4] = {0, 0, 0, 0};

	if (argc != 2)
	{
		fprintf(stderr, "usage: test_rotation CONNINFO\n");
		return 2;
	}
	if ((s = getenv("SLC_ROT_SEED")) != NULL && *s)
		first = strtoul(s, NULL, 10);
	if ((s = getenv("SLC_ROT_SEEDS")) != NULL && *s)
		seeds = strtoul(s, NULL, 10);
	if ((s = getenv("SLC_ROT_ROUNDS")) != NULL && *s)
		rounds = atoi(s);

	memset(&w, 0, sizeof(w));
	w.a = connect_to(argv[1]);
	w.rot = connect_to(argv[1]);
	w.blk[0] = connect_to(argv[1]);
	w.blk[1] = connect_to(argv[1]);
	for (unsigned long seed = first; seed < first + seeds; seed++)
	{
		run_seed(&w, seed, rounds, shapes);
		if (failures == 0)
		{
			printf("ok   seed %lu\n", seed);
			passed++;
		}
		else
		{
			printf("FAIL seed %lu (%d checks failed; replay with SLC_ROT_SEED=%lu SLC_ROT_SEEDS=1)\n",
				   seed, failures, seed);
			failed++;
		}
		fflush(stdout);
	}
	printf("rotations by shape: %d one pass, %d held then a tail, %d with a second pass, "
		   "%d with a second pass held then a tail\n",
		   shapes[0], shapes[1], shapes[2], shapes[3]);
	printf("rotation: %d passed, %d failed\n", passed, failed);
	PQfinish(w.a);
	PQfinish(w.rot);
	PQfinish(w.blk[0]);
	PQfinish(w.blk[1]);
	return failed > 0 ? 1 : 0;
}
