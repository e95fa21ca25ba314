/*
 * test_durability.c - crash-safety tests of the client's local replica,
 * offline (no server).
 *
 * It is built with the library's sources and their private header
 * (src/client/client_int.h) so that it can drive the same internal write
 * paths the protocol code uses (slcli_checkpoint, slcli_log_append and
 * slcli_log_sync, the download file), then damages the files the way a
 * crash or a bad disk would and checks what slcl_open makes of them:
 *
 *  1. a torn write at every byte offset of the local log: the replica opens
 *     at the last complete record, with the same hash as a reference fold,
 *     and the torn tail is cut off the file;
 *  2. a flipped byte inside a record: cut there;
 *  3. a crash between a checkpoint's two renames (new state, old log): the
 *     stale log is discarded;
 *  4. a flipped byte in the state file: detected, the replica is dropped and
 *     a download requested;
 *  5. a torn download file: the download resumes after the last complete
 *     row; a completed download whose file was not removed yet: cleaned up;
 *  6. leftovers of atomic writes (*.tmp) are removed; a second open of the
 *     same directory is refused while the first holds it.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <assert.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int	failures;
static int	checks;
static int	events_corrupt, events_repair, events_resume;

#define CHECK(cond, ...) do { \
	checks++; \
	if (!(cond)) { \
		failures++; \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} \
} while (0)

static void
count_events(void *arg, const slcl_event *ev)
{
	(void) arg;
	if (ev->type == SLCL_EV_CORRUPT)
		events_corrupt++;
	if (ev->type == SLCL_EV_REPAIR)
		events_repair++;
	if (ev->type == SLCL_EV_DOWNLOAD_RESUME)
		events_resume++;
}

static char base_dir[1024];

static slcl_client *
open_dir(const char *dir)
{
	slcl_options o;
	slcl_client *c = NULL;
	slcl_rc		rc;

	slcl_options_init(&o);
	o.doc = "tdoc";
	o.dir = dir;
	o.client_id = "tester";
	o.on_event = count_events;
	rc = slcl_open(&o, &c);
	if (rc != SLCL_OK)
	{
		fprintf(stderr, "slcl_open(%s): %s\n", dir, slcl_open_error());
		exit(1);
	}
	return c;
}

static int64_t
file_size(const char *dir, const char *name)
{
	char		p[2048];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (stat(p, &st) != 0)
		return -1;
	return st.st_size;
}

static uint8_t *
slurp(const char *dir, const char *name, size_t *len)
{
	char		p[2048];
	FILE	   *f;
	uint8_t    *b;
	int64_t		n = file_size(dir, name);

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "rb");
	assert(f && n >= 0);
	b = malloc((size_t) n + 1);
	assert(b);
	assert(fread(b, 1, (size_t) n, f) == (size_t) n);
	fclose(f);
	*len = (size_t) n;
	return b;
}

static void
spit(const char *dir, const char *name, const uint8_t *b, size_t len)
{
	char		p[2048];
	FILE	   *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "wb");
	assert(f);
	assert(fwrite(b, 1, len, f) == len);
	fclose(f);
}

static void
rm_rf(const char *dir)
{
	char		cmd[2100];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		exit(1);
}

/* A delta of n changes setting key k+i to "v<lsn>" (or deleting every 5th). */
static size_t
make_delta(int64_t lsn, int n, uint8_t *out)
{
	slc_change ch[4];
	uint8_t		keys[4][8];
	char		vals[4][32];

	for (int i = 0; i < n; i++)
	{
		int			k = (int) ((lsn * 7 + i * 3) % 23);

		snprintf((char *) keys[i], sizeof(keys[i]), "k%02d", k + i * 30);
		snprintf(vals[i], sizeof(vals[i]), "v%lld-%d", (long long) lsn, i);
		ch[i].key = keys[i];
		ch[i].klen = (uint32_t) strlen((char *) keys[i]);
		ch[i].is_delete = (lsn % 5 == 0 && i == 0);
		ch[i].val = ch[i].is_delete ? NULL : (const uint8_t *) vals[i];
		ch[i].vlen = ch[i].is_delete ? 0 : (uint32_t) strlen(vals[i]);
	}
	return slc_delta_encode(ch, (uint32_t) n, out);
}

/* What the replica must look like after k records of the local log. */
typedef struct expect
{
	int64_t		end;			/* file offset after the record */
	int64_t		lsn;
	char		log_id[SLCL_LOG_ID_MAX + 1];
	uint8_t		hash[SLC_HASH_LEN];
} expect;

#define NREC 24
static expect ex[NREC + 1];		/* ex[0]: after the header */

/*
 * Build a replica in dir: a state at (L1, 10) with some items, then NREC
 * records: entries 11.., a switch to L2 after the 12th record.
 */
static void
build(const char *dir)
{
	slcl_client *c;
	slc_state  *ref = slc_state_new();
	uint8_t		delta[512];

	rm_rf(dir);
	c = open_dir(dir);
	CHECK(!slcl_position(c, NULL, NULL), "a new directory has no position");
	for (int i = 0; i < 20; i++)
	{
		char		k[16],
					v[16];

		snprintf(k, sizeof(k), "k%02d", i);
		snprintf(v, sizeof(v), "base%d", i);
		slc_state_put(c->state, SLC_NS_DATA, (uint8_t *) k, strlen(k), (uint8_t *) v, strlen(v));
		slc_state_put(ref, SLC_NS_DATA, (uint8_t *) k, strlen(k), (uint8_t *) v, strlen(v));
	}
	{
		uint8_t		wm[SLC_WATERMARK_LEN];

		slc_watermark_encode(3, 9, wm);
		slc_state_put(c->state, SLC_NS_CLIENT, (uint8_t *) "w", 1, wm, sizeof(wm));
		slc_state_put(ref, SLC_NS_CLIENT, (uint8_t *) "w", 1, wm, sizeof(wm));
	}
	strcpy(c->log_id, "0123456789abcdef0123456789abcdef");
	c->lsn = 10;
	c->have_state = 1;
	CHECK(slcli_checkpoint(c, 0) == SLCL_OK, "checkpoint: %s", c->err);

	ex[0].end = c->log_bytes;
	ex[0].lsn = c->lsn;
	strcpy(ex[0].log_id, c->log_id);
	slc_hash_serialize(slc_state_hash(ref), ex[0].hash);
	for (int r = 1; r <= NREC; r++)
	{
		if (r == 12)
		{
			uint8_t		h[SLC_HASH_LEN];
			const char *next = "fedcba9876543210fedcba9876543210";

			slc_hash_serialize(slc_state_hash(c->state), h);
			CHECK(slcli_rec_switch(&c->rec, c->lsn, h, c->log_id, next) == 0, "rec_switch");
			CHECK(slcli_log_append(c) == SLCL_OK, "log_append");
			strcpy(c->log_id, next);
		}
		else
		{
			int64_t		lsn = c->lsn + 1;
			size_t		dl = make_delta(lsn, 1 + r % 3, delta);
			const char *cid = (r % 4 == 0) ? "writer" : NULL;

			CHECK(slc_state_apply_entry(c->state, delta, dl, lsn, cid, cid ? 6 : 0, r) == SLC_OK, "apply");
			CHECK(slc_state_apply_entry(ref, delta, dl, lsn, cid, cid ? 6 : 0, r) == SLC_OK, "apply ref");
			CHECK(slcli_rec_entry(&c->rec, lsn, r, cid, cid ? 6 : 0, delta, dl) == 0, "rec_entry");
			CHECK(slcli_log_append(c) == SLCL_OK, "log_append");
			c->lsn = lsn;
		}
		ex[r].end = c->log_bytes;
		ex[r].lsn = c->lsn;
		strcpy(ex[r].log_id, c->log_id);
		slc_hash_serialize(slc_state_hash(ref), ex[r].hash);
	}
	CHECK(slcli_log_sync(c) == SLCL_OK, "log_sync");
	CHECK(file_size(dir, "log") == ex[NREC].end, "log size %lld, expected %lld",
		  (long long) file_size(dir, "log"), (long long) ex[NREC].end);
	slcl_close(c);
	slc_state_free(ref);
}

/* Open dir and check that it is exactly at ex[k]. */
static void
expect_at(const char *dir, int k, const char *what)
{
	slcl_client *c = open_dir(dir);
	const char *log_id;
	int64_t		lsn;
	uint8_t		h[SLC_HASH_LEN];
	slc_hash	re;
	uint8_t		rh[SLC_HASH_LEN];

	CHECK(slcl_position(c, &log_id, &lsn), "%s: no position", what);
	if (slcl_position(c, &log_id, &lsn))
	{
		CHECK(lsn == ex[k].lsn, "%s: lsn %lld, expected %lld", what, (long long) lsn, (long long) ex[k].lsn);
		CHECK(strcmp(log_id, ex[k].log_id) == 0, "%s: log %s, expected %s", what, log_id, ex[k].log_id);
		slcl_hash(c, h);
		CHECK(memcmp(h, ex[k].hash, SLC_HASH_LEN) == 0, "%s: hash differs from the reference fold", what);
		slc_state_rehash(slcl_state(c), &re);
		slc_hash_serialize(&re, rh);
		CHECK(memcmp(h, rh, SLC_HASH_LEN) == 0, "%s: running hash != rehash", what);
	}
	slcl_close(c);
	CHECK(file_size(dir, "log") == ex[k].end, "%s: log is %lld bytes after open, expected %lld", what,
		  (long long) file_size(dir, "log"), (long long) ex[k].end);
}

static void
test_torn_log(void)
{
	char		dir[1100];
	uint8_t    *full;
	size_t		len;
	int			tested = 0;

	snprintf(dir, sizeof(dir), "%s/torn", base_dir);
	build(dir);
	expect_at(dir, NREC, "intact");
	full = slurp(dir, "log", &len);

	/* cut at every byte after the header record */
	for (size_t cut = (size_t) ex[0].end; cut <= len; cut++)
	{
		int			k = 0;
		char		what[64];

		while (k < NREC && (size_t) ex[k + 1].end <= cut)
			k++;
		spit(dir, "log", full, cut);
		snprintf(what, sizeof(what), "log cut at %zu", cut);
		expect_at(dir, k, what);
		tested++;
	}
	CHECK(tested > 100, "tested %d cut points", tested);

	/* a torn header: the log is stale-looking, the state alone remains */
	spit(dir, "log", full, 10);
	{
		slcl_client *c = open_dir(dir);
		int64_t		lsn = -1;

		CHECK(slcl_position(c, NULL, &lsn) && lsn == ex[0].lsn, "torn log header: at the state's position");
		slcl_close(c);
	}

	/* garbage instead of a tail (a write that reached the disk out of order) */
	for (int k = 1; k <= NREC; k += 5)
	{
		uint8_t    *bad = malloc(len);
		char		what[64];

		memcpy(bad, full, len);
		bad[ex[k - 1].end + FRAME_HDR + 2] ^= 0x40;	/* inside record k */
		spit(dir, "log", bad, len);
		snprintf(what, sizeof(what), "flipped byte in record %d", k);
		expect_at(dir, k - 1, what);
		free(bad);
	}
	free(full);
	printf("torn log: %d cut points, each reopened at the last complete record\n", tested);
}

static void
test_stale_log(void)
{
	char		dir[1100];
	uint8_t    *old;
	size_t		len;
	slcl_client *c;
	int64_t		lsn;
	int			before = events_repair;

	snprintf(dir, sizeof(dir), "%s/stale", base_dir);
	build(dir);
	old = slurp(dir, "log", &len);
	/* checkpoint at the end, then put the old log back: as if we crashed
	 * after renaming the new state and before replacing the log */
	c = open_dir(dir);
	CHECK(slcli_checkpoint(c, 0) == SLCL_OK, "checkpoint");
	slcl_close(c);
	spit(dir, "log", old, len);
	c = open_dir(dir);
	CHECK(slcl_position(c, NULL, &lsn) && lsn == ex[NREC].lsn, "stale log: at the checkpoint's lsn");
	{
		uint8_t		h[SLC_HASH_LEN];

		slcl_hash(c, h);
		CHECK(memcmp(h, ex[NREC].hash, SLC_HASH_LEN) == 0, "stale log: hash");
	}
	CHECK(c->stats.replayed == 0, "stale log: nothing replayed");
	slcl_close(c);
	CHECK(events_repair > before, "stale log: reported as a repair");
	CHECK(file_size(dir, "log") < (int64_t) len, "stale log: replaced");
	free(old);
	printf("stale log after a checkpoint crash: discarded\n");
}

static void
test_corrupt_state(void)
{
	char		dir[1100];
	uint8_t    *st;
	size_t		len;
	slcl_client *c;
	int			before = events_corrupt;

	snprintf(dir, sizeof(dir), "%s/corrupt", base_dir);
	build(dir);
	st = slurp(dir, "state", &len);
	for (size_t off = 0; off < len; off += len / 17 + 1)
	{
		uint8_t    *bad = malloc(len);

		build(dir);
		memcpy(bad, st, len);
		bad[off] ^= 0x08;
		spit(dir, "state", bad, len);
		c = open_dir(dir);
		CHECK(!slcl_position(c, NULL, NULL), "flipped state byte %zu: state not trusted", off);
		CHECK(c->need_download == SLCL_DL_LOCAL_CORRUPT, "flipped state byte %zu: download requested", off);
		slcl_close(c);
		CHECK(file_size(dir, "state") == -1 && file_size(dir, "log") == -1,
			  "flipped state byte %zu: state and log removed", off);
		free(bad);
	}
	/* a truncated state file (cannot happen with rename, but a disk can) */
	build(dir);
	spit(dir, "state", st, len - 3);
	c = open_dir(dir);
	CHECK(!slcl_position(c, NULL, NULL), "truncated state: not trusted");
	slcl_close(c);
	CHECK(events_corrupt > before, "corruption reported");
	free(st);
	printf("damaged state file: detected at every tested offset\n");
}

static void
test_download(void)
{
	char		dir[1100];
	slcl_client *c;
	buf			b = {0};
	uint8_t		hash[SLC_HASH_LEN] = {1};
	const char *log = "aaaabbbbccccddddaaaabbbbccccdddd";
	int64_t		ends[11];
	uint8_t    *full;
	size_t		len;
	uint64_t	id = 0x1234;

	snprintf(dir, sizeof(dir), "%s/download", base_dir);
	rm_rf(dir);
	c = open_dir(dir);
	/* the download file as dl_start and dl_run write it */
	CHECK(buf_u8(&b, 'D') == 0 && buf_u64(&b, id) == 0 && buf_u64(&b, 77) == 0 &&
		  buf_put(&b, hash, SLC_HASH_LEN) == 0 && buf_u8(&b, SLCL_DL_COLLECTED) == 0 &&
		  buf_lp(&b, log, strlen(log)) == 0 && buf_lp(&b, "tdoc", 4) == 0, "D record");
	c->dlf = slcli_create_framed(c, "download", MAGIC_DOWNLOAD, &b);
	CHECK(c->dlf != NULL, "create download");
	ends[0] = MAGIC_LEN + FRAME_HDR + (int64_t) b.len;
	for (int i = 1; i <= 10; i++)
	{
		char		k[16],
					v[64];

		snprintf(k, sizeof(k), "key%02d", i);
		snprintf(v, sizeof(v), "value number %d", i);
		CHECK(slcli_rec_item(&c->rec, SLC_NS_DATA, (uint8_t *) k, strlen(k), (uint8_t *) v, strlen(v)) == 0 &&
			  slcli_rec_write(c->dlf, &c->rec) == 0, "item");
		ends[i] = ends[i - 1] + FRAME_HDR + (int64_t) c->rec.len;
	}
	CHECK(slcli_flush_sync(c->dlf) == 0, "sync");
	slcl_close(c);
	full = slurp(dir, "download", &len);
	CHECK((int64_t) len == ends[10], "download size");

	for (size_t cut = (size_t) ends[0]; cut <= len; cut += 3)
	{
		int			k = 0;
		int			before = events_resume;

		while (k < 10 && (size_t) ends[k + 1] <= cut)
			k++;
		spit(dir, "download", full, cut);
		c = open_dir(dir);
		CHECK(c->downloading && c->dl_rows == k, "download cut at %zu: %lld rows, expected %d", cut,
			  (long long) c->dl_rows, k);
		CHECK(events_resume == before + 1, "download cut at %zu: resume reported", cut);
		CHECK(strcmp(c->dl_log, log) == 0 && c->dl_base == 77 && c->dl_reason == SLCL_DL_COLLECTED,
			  "download target restored");
		if (k > 0)
		{
			char		last[16];

			snprintf(last, sizeof(last), "key%02d", k);
			CHECK(c->dl_have_after && c->dl_after.len == strlen(last) &&
				  memcmp(c->dl_after.p, last, c->dl_after.len) == 0, "resumes after the last complete key");
		}
		else
			CHECK(!c->dl_have_after, "resumes from the start");
		CHECK(slc_state_count(c->state) == (size_t) k, "partial state holds %d keys", k);
		CHECK(!slcl_position(c, NULL, NULL), "no position mid-download");
		slcl_close(c);
		CHECK(file_size(dir, "download") == ends[k], "download truncated to %lld", (long long) ends[k]);
	}

	/* a download that completed (state tagged with its id) but was not removed */
	spit(dir, "download", full, len);
	c = open_dir(dir);
	slc_state_free(c->state);
	c->state = slc_state_new();
	slc_state_put(c->state, SLC_NS_DATA, (uint8_t *) "x", 1, (uint8_t *) "y", 1);
	strcpy(c->log_id, log);
	c->lsn = 77;
	c->have_state = 1;
	c->downloading = 0;
	fclose(c->dlf);
	c->dlf = NULL;
	CHECK(slcli_checkpoint(c, id) == SLCL_OK, "checkpoint with origin");
	c->have_state = 0;
	slcl_close(c);
	spit(dir, "download", full, len);	/* still there, as after a crash */
	c = open_dir(dir);
	CHECK(!c->downloading && slcl_position(c, NULL, NULL), "completed download: state kept");
	slcl_close(c);
	CHECK(file_size(dir, "download") == -1, "completed download: file removed");
	free(full);
	free(b.p);
	printf("torn download file: resumes after the last complete row\n");
}

static void
test_leftovers_and_lock(void)
{
	char		dir[1100];
	slcl_client *c,
			   *c2 = NULL;
	slcl_options o;

	snprintf(dir, sizeof(dir), "%s/left", base_dir);
	build(dir);
	spit(dir, "state.tmp", (const uint8_t *) "junk", 4);
	spit(dir, "log.tmp", (const uint8_t *) "junk", 4);
	c = open_dir(dir);
	CHECK(file_size(dir, "state.tmp") == -1 && file_size(dir, "log.tmp") == -1, "tmp files removed");
	CHECK(slcl_position(c, NULL, NULL), "state intact");
	slcl_options_init(&o);
	o.doc = "tdoc";
	o.dir = dir;
	CHECK(slcl_open(&o, &c2) == SLCL_ERR_LOCKED && c2 == NULL, "a second open is refused");
	o.doc = "other";
	slcl_close(c);
	CHECK(slcl_open(&o, &c2) == SLCL_ERR_ARG && c2 == NULL, "another document's directory is refused");
	printf("leftover tmp files removed; the directory lock holds\n");
}

int
main(int argc, char **argv)
{
	snprintf(base_dir, sizeof(base_dir), "%s", argc > 1 ? argv[1] : "tmp_durability");
	rm_rf(base_dir);
	if (mkdir(base_dir, 0700) != 0)
	{
		perror(base_dir);
		return 1;
	}
	test_torn_log();
	test_stale_log();
	test_corrupt_state();
	test_download();
	test_leftovers_and_lock();
	rm_rf(base_dir);
	printf("%d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
