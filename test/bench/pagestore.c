/*
 * pagestore.c - the page-store workload of the compression benchmarks: the
 * deltas a SQLite page store (a SQLSync-style client syncing its database
 * file page by page) appends to synclog.
 *
 *   pagestore [-c COMMITS] [-s SEED] [-t TARGET_PAGES] [-V COMMIT] OUT [OUT_HEX]
 *
 * Runs a notes application on a real SQLite database (libsqlite3, 4 KiB
 * pages, rollback journal, so the main file holds every commit): each
 * commit inserts a few notes (title, tags, author, a body of 300 to 3,000
 * characters of pseudo-English text), rewrites part of the body of a few
 * others, logs a burst of small JSON events, and deletes the oldest notes
 * while more than TARGET_PAGES pages are in use (default 1280 pages, 5 MiB;
 * the file keeps its size, and freed pages are used again).
 * With -V COMMIT, commit number COMMIT (counted from 1) instead deletes
 * the older half of the notes and of the events and then runs VACUUM,
 * which shrinks the file: its delta deletes the pages past the new end.
 * After each commit it compares the file with its image after the
 * previous commit and writes the pages that changed as one delta in the
 * version 1 encoding of PROTOCOL.md section 10: key = the page number as a
 * 4-byte big-endian integer (PROTOCOL.md 14 (c)), value = the 4096 bytes;
 * a page past the new end of the file is a deletion.
 *
 * OUT gets the deltas as u32le length || delta; OUT_HEX, if given, one
 * line per delta, "\x" and the delta in hex (for COPY into a bytea
 * column).  Prints "commits <n> pages <changed pages> bytes <delta bytes>
 * file_pages <pages at the end>" on stdout.
 *
 * The text is made of pseudo-words (syllables, drawn with a Zipf
 * distribution over a 4,000-word vocabulary), which compresses about as
 * well as English prose; ids are random hex.  Everything is derived from
 * SEED, so a run is reproducible.
 *
 * Build (test/bench/run.sh does it):
 *   cc -O2 -I src/core test/bench/pagestore.c src/core/synclog_core.c -lsqlite3 -lxxhash
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "synclog_core.h"

#define PAGE		4096
#define VOCAB		4000

static uint64_t rng_state;

/* xorshift64*: small, seedable, good enough for a workload. */
static uint64_t
rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

/* A whole number in [lo, hi]. */
static int
rnd_in(int lo, int hi)
{
	return lo + (int) (rnd() % (uint64_t) (hi - lo + 1));
}

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "pagestore: %s: %s\n", what, detail);
	exit(1);
}

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n > 0 ? n : 1);

	if (p == NULL)
		die("out of memory", "malloc");
	return p;
}

/* ---- pseudo-English ---------------------------------------------------- */

static const char *const syllables[] = {
	"a", "e", "i", "o", "u", "ka", "te", "ri", "mo", "su", "an", "en", "in",
	"on", "un", "ter", "com", "pro", "con", "der", "ma", "ne", "li", "to",
	"ver", "sta", "ble", "tion", "ing", "est", "al", "or", "ly", "ment",
	"se", "de", "re", "ra", "lo", "per", "ca", "di", "mi", "ti", "ge", "ho",
	"wa", "sh", "th", "ch", "st", "pl", "gr", "tr", "be", "fa", "ha", "ve"
};
#define N_SYLL (sizeof(syllables) / sizeof(syllables[0]))

static char *vocab[VOCAB];
static double zipf_cdf[VOCAB];

static void
build_vocab(void)
{
	double		total = 0;

	for (int i = 0; i < VOCAB; i++)
	{
		/* frequent words are short, as in English */
		int			n = i < 60 ? rnd_in(1, 2) : i < 800 ? rnd_in(2, 3) : rnd_in(2, 4);
		char		w[64] = "";

		for (int k = 0; k < n; k++)
			strcat(w, syllables[rnd() % N_SYLL]);
		vocab[i] = strdup(w);
		if (vocab[i] == NULL)
			die("out of memory", "strdup");
		total += 1.0 / (i + 1);
		zipf_cdf[i] = total;
	}
	for (int i = 0; i < VOCAB; i++)
		zipf_cdf[i] /= total;
}

static const char *
word(void)
{
	double		u = (double) (rnd() >> 11) / 9007199254740992.0;
	int			lo = 0,
				hi = VOCAB - 1;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (zipf_cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return vocab[lo];
}

/* Sentences of pseudo-words until the text has about len characters. */
static char *
text(int len)
{
	char	   *s = xmalloc((size_t) len + 1024);	/* a sentence is under 400 */
	int			n = 0;

	s[0] = '\0';
	while (n < len)
	{
		int			words = rnd_in(4, 18);

		for (int i = 0; i < words; i++)
		{
			const char *w = word();

			n += sprintf(s + n, "%s%s", i > 0 ? " " : (n > 0 ? " " : ""), w);
			if (i == 0)
				s[n - strlen(w)] = (char) (s[n - strlen(w)] - 'a' + 'A');
			if (i > 0 && i < words - 1 && rnd() % 9 == 0)
				n += sprintf(s + n, ",");
		}
		n += sprintf(s + n, "%s", rnd() % 7 == 0 ? "?" : ".");
		if (rnd() % 6 == 0)
			n += sprintf(s + n, "\n");
	}
	return s;
}

static void
hex_id(char out[33])
{
	for (int i = 0; i < 32; i += 16)
		snprintf(out + i, 17, "%016llx", (unsigned long long) rnd());
}

/* ---- SQLite ------------------------------------------------------------ */

static sqlite3 *db;

static void
exec(const char *sql)
{
	char	   *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		die(sql, err ? err : "?");
}

static sqlite3_stmt *
prepare(const char *sql)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die(sql, sqlite3_errmsg(db));
	return st;
}

static void
step_done(sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		die("step", sqlite3_errmsg(db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int64_t
scalar(const char *sql)
{
	sqlite3_stmt *st = prepare(sql);
	int64_t		v = 0;

	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* ---- the file, page by page -------------------------------------------- */

static uint8_t *
read_file(const char *path, size_t *len)
{
	int			fd = open(path, O_RDONLY);
	struct stat sb;
	uint8_t    *p;
	size_t		got = 0;

	if (fd < 0 || fstat(fd, &sb) != 0)
		die(path, strerror(errno));
	p = xmalloc((size_t) sb.st_size);
	while (got < (size_t) sb.st_size)
	{
		ssize_t		r = read(fd, p + got, (size_t) sb.st_size - got);

		if (r <= 0)
			die(path, r < 0 ? strerror(errno) : "short read");
		got += (size_t) r;
	}
	close(fd);
	*len = got;
	return p;
}

static void
put_u32le(FILE *f, uint32_t v)
{
	uint8_t		b[4] = {(uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16),
	(uint8_t) (v >> 24)};

	if (fwrite(b, 1, 4, f) != 4)
		die("write", strerror(errno));
}

int
main(int argc, char **argv)
{
	int			commits = 2000;
	uint64_t	seed = 1;
	int			target = 1280;
	int			vacuum_at = 0;
	const char *out_path,
			   *hex_path = NULL;
	char		dbpath[] = "/tmp/pagestore.XXXXXX";
	int			opt,
				fd;
	FILE	   *out,
			   *hex = NULL;
	uint8_t    *prev = NULL;
	size_t		prev_len = 0;
	uint64_t	total_pages = 0,
				total_bytes = 0;
	int64_t		now = 1764000000;
	int64_t		next_event = 1;
	static const char usage[] =
		"usage: pagestore [-c COMMITS] [-s SEED] [-t TARGET_PAGES] [-V COMMIT] OUT [OUT_HEX]\n";
	sqlite3_stmt *ins_note,
			   *upd_note,
			   *ins_event,
			   *del_old;

	while ((opt = getopt(argc, argv, "c:s:t:V:")) != -1)
	{
		switch (opt)
		{
			case 'c':
				commits = atoi(optarg);
				break;
			case 's':
				seed = strtoull(optarg, NULL, 10);
				break;
			case 't':
				target = atoi(optarg);
				break;
			case 'V':
				vacuum_at = atoi(optarg);
				break;
			default:
				fprintf(stderr, "%s", usage);
				return 2;
		}
	}
	if (optind >= argc || commits <= 0 || target <= 0 || vacuum_at < 0)
	{
		fprintf(stderr, "%s", usage);
		return 2;
	}
	out_path = argv[optind];
	if (optind + 1 < argc)
		hex_path = argv[optind + 1];
	rng_state = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
	build_vocab();

	fd = mkstemp(dbpath);
	if (fd < 0)
		die("mkstemp", strerror(errno));
	close(fd);
	unlink(dbpath);
	if (sqlite3_open(dbpath, &db) != SQLITE_OK)
		die(dbpath, sqlite3_errmsg(db));
	exec("PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF;");
	exec("CREATE TABLE note (id INTEGER PRIMARY KEY, uid TEXT NOT NULL, author TEXT NOT NULL,"
		 " created INTEGER NOT NULL, updated INTEGER NOT NULL, title TEXT NOT NULL,"
		 " tags TEXT NOT NULL, body TEXT NOT NULL);"
		 "CREATE INDEX note_updated ON note (updated);"
		 "CREATE INDEX note_author ON note (author, updated);"
		 "CREATE UNIQUE INDEX note_uid ON note (uid);"
		 "CREATE TABLE event (id INTEGER PRIMARY KEY, note_id INTEGER, at INTEGER NOT NULL,"
		 " payload TEXT NOT NULL);"
		 "CREATE INDEX event_note ON event (note_id, at);");
	ins_note = prepare("INSERT INTO note (uid, author, created, updated, title, tags, body)"
					   " VALUES (?, ?, ?, ?, ?, ?, ?)");
	upd_note = prepare("UPDATE note SET updated = ?, body = substr(body, 1, ?) || ? || substr(body, ?)"
					   " WHERE id = (SELECT id FROM note WHERE id >= ? ORDER BY id LIMIT 1)");
	ins_event = prepare("INSERT INTO event (note_id, at, payload) VALUES (?, ?, ?)");
	del_old = prepare("DELETE FROM note WHERE id IN (SELECT id FROM note ORDER BY id LIMIT ?)");

	out = fopen(out_path, "wb");
	if (out == NULL)
		die(out_path, strerror(errno));
	if (hex_path != NULL && (hex = fopen(hex_path, "w")) == NULL)
		die(hex_path, strerror(errno));

	for (int c = 0; c < commits; c++)
	{
		int			inserts = rnd_in(1, 4),
					updates = rnd_in(1, 5),
					events = rnd_in(3, 12);
		int64_t		max_id;
		uint8_t    *cur;
		size_t		cur_len,
					npages,
					nprev;
		slc_change *ch;
		uint32_t	n = 0;
		uint8_t    *keys;

		if (c + 1 == vacuum_at)
		{
			/* the older half of everything goes, and the file shrinks */
			exec("DELETE FROM note WHERE id <= (SELECT min(id) + (max(id) - min(id)) / 2 FROM note);"
				 "DELETE FROM event WHERE id <= (SELECT min(id) + (max(id) - min(id)) / 2 FROM event);"
				 "VACUUM;");
			inserts = updates = events = 0;
		}
		exec("BEGIN");
		max_id = scalar("SELECT coalesce(max(id), 0) FROM note");
		for (int i = 0; i < inserts; i++)
		{
			char		uid[33],
						tags[256];
			char	   *title = text(rnd_in(20, 60)),
					   *body = text(rnd_in(300, 3000));
			int			nt = rnd_in(1, 4),
						tl;

			hex_id(uid);
			tl = snprintf(tags, sizeof(tags), "[");
			for (int k = 0; k < nt; k++)
				tl += snprintf(tags + tl, sizeof(tags) - (size_t) tl, "%s\"%s\"", k ? "," : "", word());
			snprintf(tags + tl, sizeof(tags) - (size_t) tl, "]");
			sqlite3_bind_text(ins_note, 1, uid, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(ins_note, 2, vocab[rnd() % 50], -1, SQLITE_STATIC);
			sqlite3_bind_int64(ins_note, 3, now);
			sqlite3_bind_int64(ins_note, 4, now);
			sqlite3_bind_text(ins_note, 5, title, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(ins_note, 6, tags, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(ins_note, 7, body, -1, SQLITE_TRANSIENT);
			step_done(ins_note);
			free(title);
			free(body);
			now += rnd_in(1, 90);
		}
		for (int i = 0; i < updates && max_id > 0; i++)
		{
			/* recent notes are edited more often than old ones */
			int64_t		back = (int64_t) (pow((double) (rnd() % 1000) / 1000.0, 3) * (double) max_id);
			char	   *ins = text(rnd_in(10, 400));
			int			at = rnd_in(1, 2000);

			sqlite3_bind_int64(upd_note, 1, now);
			sqlite3_bind_int(upd_note, 2, at);
			sqlite3_bind_text(upd_note, 3, ins, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int(upd_note, 4, at + rnd_in(0, 300));
			sqlite3_bind_int64(upd_note, 5, max_id - back);
			step_done(upd_note);
			free(ins);
			now += rnd_in(1, 30);
		}
		for (int i = 0; i < events; i++)
		{
			char		payload[512],
						uid[33];

			hex_id(uid);
			snprintf(payload, sizeof(payload),
					 "{\"kind\":\"%s\",\"device\":\"%.12s\",\"seq\":%lld,\"ok\":%s,\"note\":\"%s %s\"}",
					 vocab[rnd() % 12], uid, (long long) next_event++,
					 rnd() % 10 ? "true" : "false", word(), word());
			sqlite3_bind_int64(ins_event, 1, max_id > 0 ? (int64_t) (rnd() % (uint64_t) max_id) + 1 : 1);
			sqlite3_bind_int64(ins_event, 2, now);
			sqlite3_bind_text(ins_event, 3, payload, -1, SQLITE_TRANSIENT);
			step_done(ins_event);
			now += rnd_in(0, 5);
		}
		/* pages in use: the file never shrinks, freed pages are reused */
		if (scalar("PRAGMA page_count") - scalar("PRAGMA freelist_count") > target)
		{
			sqlite3_bind_int(del_old, 1, rnd_in(2, 6));
			step_done(del_old);
			exec("DELETE FROM event WHERE id IN (SELECT id FROM event ORDER BY id LIMIT 60)");
		}
		exec("COMMIT");

		cur = read_file(dbpath, &cur_len);
		if (cur_len % PAGE != 0)
			die("database file", "not a whole number of pages");
		npages = cur_len / PAGE;
		nprev = prev_len / PAGE;
		ch = xmalloc(sizeof(slc_change) * (npages > nprev ? npages : nprev));
		keys = xmalloc(4 * (npages > nprev ? npages : nprev));
		for (size_t p = 0; p < (npages > nprev ? npages : nprev); p++)
		{
			uint32_t	pgno = (uint32_t) p + 1;
			uint8_t    *k = keys + 4 * n;

			if (p < npages && p < nprev &&
				memcmp(cur + p * PAGE, prev + p * PAGE, PAGE) == 0)
				continue;
			k[0] = (uint8_t) (pgno >> 24);
			k[1] = (uint8_t) (pgno >> 16);
			k[2] = (uint8_t) (pgno >> 8);
			k[3] = (uint8_t) pgno;
			ch[n].key = k;
			ch[n].klen = 4;
			if (p < npages)
			{
				ch[n].val = cur + p * PAGE;
				ch[n].vlen = PAGE;
				ch[n].is_delete = 0;
			}
			else
			{
				ch[n].val = NULL;
				ch[n].vlen = 0;
				ch[n].is_delete = 1;
			}
			n++;
		}
		{
			size_t		size = slc_delta_encoded_size(ch, n);
			uint8_t    *d = xmalloc(size);

			slc_delta_encode(ch, n, d);
			put_u32le(out, (uint32_t) size);
			if (fwrite(d, 1, size, out) != size)
				die(out_path, strerror(errno));
			if (hex != NULL)
			{
				fputs("\\\\x", hex);
				for (size_t i = 0; i < size; i++)
					fprintf(hex, "%02x", d[i]);
				fputc('\n', hex);
			}
			total_bytes += size;
			free(d);
		}
		total_pages += n;
		free(ch);
		free(keys);
		free(prev);
		prev = cur;
		prev_len = cur_len;
	}
	if (fclose(out) != 0 || (hex != NULL && fclose(hex) != 0))
		die("close", strerror(errno));
	printf("commits %d pages %llu bytes %llu file_pages %zu\n", commits,
		   (unsigned long long) total_pages, (unsigned long long) total_bytes,
		   prev_len / PAGE);
	free(prev);
	sqlite3_close(db);
	unlink(dbpath);
	return 0;
}
