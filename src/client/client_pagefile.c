/*
 * client_pagefile.c
 *
 * The page file (options.page_file): for a document in the page-store
 * profile (README, "The page-store profile": key = page number, 4 bytes
 * big-endian, from 1; value = the page; a file that shrinks deletes the
 * pages past its end), a file whose pages are the document's values in key
 * order, kept up to date after every committed transaction of the replica,
 * so that an application opens it read-only with SQLite as the database
 * the writer replicates.
 *
 * Each update is an SQLite-style write transaction on that file, so that
 * SQLite readers never see it half-done and a crash leaves the previous
 * file: the locks of SQLite's unix VFS (RESERVED, PENDING, then the SHARED
 * range, with fcntl, waiting for readers to finish), a rollback journal in
 * SQLite's own format (PATH-journal: the original content of every page
 * about to change, and the original size) synced before the file is
 * touched, the pages written and the file truncated or extended, synced,
 * then the journal deleted.  A hot journal left by a crash is rolled back
 * by any SQLite connection that can write the file, and by the client on
 * open.  The position the file holds is kept beside it (PATH.synclog-pos);
 * when it is not the replica's (a crash between the replica's commit and
 * the file's, a download, a new page file), the file is rebuilt from the
 * replica: written whole to PATH.synclog-tmp, synced, renamed over it.
 *
 * Owns: the page file, its journal and position files, the page-store key
 * format checks.
 * Must never: write a page of the file before its original content is
 * synced in the journal, leave a journal behind a rename (it would apply
 * to the new file), or leave a file that is not the replica's state at the
 * position its position file names.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* SQLite's unix VFS lock bytes */
#define PF_PENDING		0x40000000
#define PF_RESERVED		(PF_PENDING + 1)
#define PF_SHARED		(PF_PENDING + 2)
#define PF_SHARED_SIZE	510

#define JOURNAL_SECTOR	512

static const uint8_t journal_magic[8] = {0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7};

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

/* The rollback journal's page checksum (SQLite's pager_cksum). */
static uint32_t
page_cksum(uint32_t nonce, const uint8_t *page, uint32_t psize)
{
	uint32_t	sum = nonce;

	for (int i = (int) psize - 200; i > 0; i -= 200)
		sum += page[i];
	return sum;
}

static void
side_path(const slcl_client *c, const char *suffix, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%s", c->opt.page_file, suffix);
}

static int
lock_range(int fd, short type, off_t start, off_t len)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = start;
	fl.l_len = len;
	while (fcntl(fd, F_SETLKW, &fl) != 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* EXCLUSIVE as SQLite's unix VFS takes it, waiting for readers to leave. */
static int
lock_exclusive(int fd)
{
	return lock_range(fd, F_WRLCK, PF_RESERVED, 1) || lock_range(fd, F_WRLCK, PF_PENDING, 1) ||
		lock_range(fd, F_WRLCK, PF_SHARED, PF_SHARED_SIZE);
}

static void
unlock_all(int fd)
{
	(void) lock_range(fd, F_UNLCK, PF_PENDING, PF_SHARED_SIZE + 2);
}

static slcl_rc
pf_fail(slcl_client *c, const char *what, const char *path)
{
	return slcli_fail_errno(c, what, path);
}

static int
write_all(int fd, const void *p, size_t n, off_t off)
{
	const uint8_t *b = p;

	while (n > 0)
	{
		ssize_t		w = pwrite(fd, b, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t) w;
		off += w;
	}
	return 0;
}

static int
read_all(int fd, void *p, size_t n, off_t off)
{
	uint8_t    *b = p;

	while (n > 0)
	{
		ssize_t		r = pread(fd, b, n, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t) r;
		off += r;
	}
	return 0;
}

static int
dir_of_path(const char *path, char *out, size_t outlen)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(out, outlen, ".");
	else if (slash == path)
		snprintf(out, outlen, "/");
	else
		snprintf(out, outlen, "%.*s", (int) (slash - path), path);
	return 0;
}

static int
fsync_parent(const char *path)
{
	char		dir[4096];

	dir_of_path(path, dir, sizeof(dir));
	return slcli_fsync_dir(dir);
}

/*
 * Roll back a hot journal left by a crash: put back the original pages
 * that check, truncate to the original size, delete the journal.
 */
static slcl_rc
rollback_journal(slcl_client *c)
{
	char		jpath[4200];
	int			jfd,
				fd;
	uint8_t		hdr[28];
	struct stat st;
	uint32_t	nrec,
				nonce,
				orig,
				sector,
				psize;
	uint8_t    *page = NULL;
	slcl_rc		rc = SLCL_OK;
	int64_t		restored = 0;

	side_path(c, "-journal", jpath, sizeof(jpath));
	jfd = open(jpath, O_RDONLY | O_CLOEXEC);
	if (jfd < 0)
		return errno == ENOENT ? SLCL_OK : pf_fail(c, "could not open", jpath);
	fd = open(c->opt.page_file, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(jfd, &st) != 0)
	{
		rc = pf_fail(c, "could not open", c->opt.page_file);
		goto out;
	}
	if (st.st_size >= (off_t) sizeof(hdr) && read_all(jfd, hdr, sizeof(hdr), 0) == 0 &&
		memcmp(hdr, journal_magic, 8) == 0)
	{
		nrec = get_be32(hdr + 8);
		nonce = get_be32(hdr + 12);
		orig = get_be32(hdr + 16);
		sector = get_be32(hdr + 20);
		psize = get_be32(hdr + 24);
		if (psize < 512 || psize > 65536 || (psize & (psize - 1)) != 0 || sector < 32 ||
			sector > 65536 || (sector & (sector - 1)) != 0)
			goto done;			/* not a journal we can read: nothing written yet */
		page = malloc(psize);
		if (page == NULL)
		{
			rc = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			goto out;
		}
		lock_exclusive(fd);
		for (uint32_t i = 0; i < nrec; i++)
		{
			off_t		off = (off_t) sector + (off_t) i * (psize + 8);
			uint8_t		pg[4],
						ck[4];
			uint32_t	pgno;

			if (off + psize + 8 > st.st_size || read_all(jfd, pg, 4, off) != 0 ||
				read_all(jfd, page, psize, off + 4) != 0 || read_all(jfd, ck, 4, off + 4 + psize) != 0)
				break;
			pgno = get_be32(pg);
			if (pgno == 0 || get_be32(ck) != page_cksum(nonce, page, psize))
				break;
			if (pgno <= orig && write_all(fd, page, psize, (off_t) (pgno - 1) * psize) != 0)
			{
				rc = pf_fail(c, "could not write", c->opt.page_file);
				goto out;
			}
			restored++;
		}
		if (ftruncate(fd, (off_t) orig * psize) != 0 || fsync(fd) != 0)
		{
			rc = pf_fail(c, "could not roll back", c->opt.page_file);
			goto out;
		}
		c->stats.repairs++;
		slcli_emit_simple(c, SLCL_EV_REPAIR, "page file: rolled back an interrupted update (%lld pages)",
						  (long long) restored);
	}
done:
	if (unlink(jpath) != 0 || fsync_parent(jpath) != 0)
		rc = pf_fail(c, "could not remove", jpath);
out:
	if (fd >= 0)
	{
		unlock_all(fd);
		close(fd);
	}
	close(jfd);
	free(page);
	return rc;
}

/* The line of a position: "log lsn hash". */
static void
position_line(const slcli_pos *p, char *out, size_t outlen)
{
	uint8_t		h[SLC_HASH_LEN];
	char		hx[2 * SLC_HASH_LEN + 1];

	slc_hash_serialize(&p->hash, h);
	slcli_hex(h, SLC_HASH_LEN, hx);
	snprintf(out, outlen, "%s %lld %s\n", p->log_id, (long long) p->lsn, hx);
}

static slcl_rc
write_position(slcl_client *c)
{
	char		path[4200],
				tmp[4300],
				line[256];
	int			fd;

	side_path(c, ".synclog-pos", path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	position_line(&c->committed, line, sizeof(line));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, line, strlen(line), 0) != 0 || fsync(fd) != 0)
	{
		if (fd >= 0)
			close(fd);
		return pf_fail(c, "could not write", tmp);
	}
	close(fd);
	if (rename(tmp, path) != 0 || fsync_parent(path) != 0)
		return pf_fail(c, "could not install", path);
	return SLCL_OK;
}

/* 1 if the position file names position p. */
static int
position_is(slcl_client *c, const slcli_pos *p)
{
	char		path[4200],
				line[256],
				got[256];
	FILE	   *f;
	int			same = 0;

	side_path(c, ".synclog-pos", path, sizeof(path));
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	position_line(p, line, sizeof(line));
	if (fgets(got, sizeof(got), f) != NULL && strcmp(got, line) == 0)
		same = 1;
	fclose(f);
	return same;
}

/* Page number of a page-store key, or 0 if the key is not one. */
static uint32_t
pgno_of(const uint8_t *key, size_t klen)
{
	return klen == 4 ? get_be32(key) : 0;
}

/* Page size of page 1 (its header), or 0 if it is not a database's. */
static uint32_t
page_size_of(const uint8_t *p1, size_t len)
{
	uint32_t	ps;

	if (len < 100 || memcmp(p1, "SQLite format 3", 16) != 0)
		return 0;
	ps = ((uint32_t) p1[16] << 8) | p1[17];
	if (ps == 1)
		ps = 65536;
	if (ps < 512 || ps > 65536 || (ps & (ps - 1)) != 0 || ps != len)
		return 0;
	return ps;
}

static void
not_a_page_store(slcl_client *c, const char *why)
{
	slcli_emit_simple(c, SLCL_EV_WARNING, "page file \"%s\" not updated: the document is not a page store (%s)",
					  c->opt.page_file, why);
}

/*
 * Write the whole file from the replica's live generation, beside it, and
 * rename it into place.  A document that is not a page store is reported
 * and leaves the file as it is.
 */
static slcl_rc
rebuild(slcl_client *c)
{
	char		tmp[4200];
	sqlite3_stmt *s;
	int			fd = -1;
	int			rc;
	uint32_t	expect = 1;
	uint32_t	psize = 0;
	const char *bad = NULL;
	slcl_rc		r = SLCL_OK;

	side_path(c, ".synclog-tmp", tmp, sizeof(tmp));
	s = slcli_store_prepare(c, "SELECT key, val FROM item WHERE gen = ?1 AND ns = 1 ORDER BY key");
	if (s == NULL)
		return SLCL_ERR_IO;
	sqlite3_bind_int64(s, 1, c->committed.gen);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
	{
		sqlite3_finalize(s);
		return pf_fail(c, "could not create", tmp);
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
	{
		const uint8_t *k = sqlite3_column_blob(s, 0);
		size_t		kl = (size_t) sqlite3_column_bytes(s, 0);
		const uint8_t *v = sqlite3_column_blob(s, 1);
		size_t		vl = (size_t) sqlite3_column_bytes(s, 1);

		if (pgno_of(k, kl) != expect)
		{
			bad = expect == 1 ? "no page 1" : "a page is missing, or a key is not a page number";
			break;
		}
		if (expect == 1 && (psize = page_size_of(v, vl)) == 0)
		{
			bad = "page 1 is not the first page of an SQLite database";
			break;
		}
		if (vl != psize)
		{
			bad = "pages of different sizes";
			break;
		}
		if (write_all(fd, v, vl, (off_t) (expect - 1) * psize) != 0)
		{
			r = pf_fail(c, "could not write", tmp);
			break;
		}
		expect++;
	}
	sqlite3_finalize(s);
	if (r == SLCL_OK && bad == NULL && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = slcli_db_fail(c, "could not read the pages");
	if (r == SLCL_OK && bad == NULL && fsync(fd) != 0)
		r = pf_fail(c, "could not fsync", tmp);
	close(fd);
	if (r != SLCL_OK || bad != NULL)
	{
		unlink(tmp);
		if (bad)
			not_a_page_store(c, bad);
		return r;
	}
	if (rename(tmp, c->opt.page_file) != 0 || fsync_parent(c->opt.page_file) != 0)
		return pf_fail(c, "could not install", c->opt.page_file);
	return write_position(c);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *) a,
				y = *(const uint32_t *) b;

	return x < y ? -1 : x > y;
}

/* The changed pages of the committed transaction, sorted and unique. */
static int
changed_pages(slcl_client *c, uint32_t **out, size_t *n, const char **bad)
{
	size_t		cap = 0;
	size_t		off = 0;
	uint32_t   *pg = NULL;

	*n = 0;
	*bad = NULL;
	while (off < c->chg.len)
	{
		cur			k = {c->chg.p, c->chg.len, off, 0};
		uint8_t		t = cur_u8(&k);

		if (t == 'K')
		{
			uint8_t		ns = cur_u8(&k);
			size_t		kl;
			const uint8_t *key;

			(void) cur_u8(&k);
			key = cur_lp(&k, &kl);
			if (ns == SLC_NS_DATA)
			{
				uint32_t	p = k.bad ? 0 : pgno_of(key, kl);

				if (p == 0)
				{
					*bad = "a key is not a page number";
					break;
				}
				if (*n == cap)
				{
					size_t		nc = cap ? cap * 2 : 64;
					uint32_t   *np = realloc(pg, nc * sizeof(*np));

					if (np == NULL)
					{
						free(pg);
						return -1;
					}
					pg = np;
					cap = nc;
				}
				pg[(*n)++] = p;
			}
		}
		else
			(void) cur_u64(&k);
		if (k.bad)
			break;
		off = k.off;
	}
	if (*n > 1)
	{
		size_t		w = 1;

		qsort(pg, *n, sizeof(*pg), cmp_u32);
		for (size_t i = 1; i < *n; i++)
			if (pg[i] != pg[w - 1])
				pg[w++] = pg[i];
		*n = w;
	}
	*out = pg;
	return 0;
}

/*
 * Highest page number of the live state (0: none) and the page size of its
 * page 1; *bad says why the state is not a page store, when that shows
 * already.  O(log n): whether pages 1 to N are all there is checked whole
 * by rebuild, and by apply_changes for the pages a commit adds.
 */
static slcl_rc
page_count(slcl_client *c, uint32_t *count, uint32_t *psize, const char **bad)
{
	sqlite3_stmt *s = slcli_store_prepare(c,
										  "SELECT (SELECT key FROM item WHERE gen = ?1 AND ns = 1 ORDER BY key DESC LIMIT 1), "
										  "(SELECT val FROM item WHERE gen = ?1 AND ns = 1 AND key = x'00000001')");

	*count = 0;
	*psize = 0;
	*bad = NULL;
	if (s == NULL)
		return SLCL_ERR_IO;
	sqlite3_bind_int64(s, 1, c->committed.gen);
	if (sqlite3_step(s) != SQLITE_ROW)
	{
		sqlite3_finalize(s);
		return slcli_db_fail(c, "could not count the pages");
	}
	if (sqlite3_column_type(s, 0) != SQLITE_NULL)
	{
		*count = pgno_of(sqlite3_column_blob(s, 0), (size_t) sqlite3_column_bytes(s, 0));
		if (*count == 0)
			*bad = "a key is not a page number";
		else if ((*psize = page_size_of(sqlite3_column_blob(s, 1), (size_t) sqlite3_column_bytes(s, 1))) == 0)
			*bad = "page 1 is not the first page of an SQLite database";
	}
	sqlite3_finalize(s);
	return SLCL_OK;
}

/*
 * Apply the committed transaction's changed pages to the file, as one
 * journaled write transaction.
 */
static slcl_rc
apply_changes(slcl_client *c)
{
	char		jpath[4200];
	uint32_t   *pg = NULL;
	size_t		n = 0;
	uint32_t	count,
				psize;
	uint32_t	orig;
	const char *bad;
	int			fd = -1,
				jfd = -1;
	struct stat st;
	uint8_t    *page = NULL;
	uint8_t		hdr[JOURNAL_SECTOR];
	uint32_t	nonce = (uint32_t) slcli_random64();
	uint32_t	nrec = 0;
	sqlite3_stmt *s = NULL;
	slcl_rc		r;

	r = page_count(c, &count, &psize, &bad);
	if (r != SLCL_OK)
		return r;
	if (bad == NULL && changed_pages(c, &pg, &n, &bad) != 0)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	if (bad != NULL)
	{
		free(pg);
		not_a_page_store(c, bad);
		return SLCL_OK;
	}
	side_path(c, "-journal", jpath, sizeof(jpath));
	fd = open(c->opt.page_file, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0)
	{
		r = pf_fail(c, "could not open", c->opt.page_file);
		goto out;
	}
	if (count > 0 && st.st_size % psize != 0)
	{
		/* not the file we keep (or of another page size): write it whole */
		close(fd);
		free(pg);
		return rebuild(c);
	}
	{
		uint8_t		h1[100];

		/* the file's own page size must be the new one's, or it is rewritten */
		if (st.st_size >= (off_t) psize &&
			(read_all(fd, h1, sizeof(h1), 0) != 0 || (uint32_t) (((h1[16] << 8) | h1[17]) == 1 ? 65536 :
																(h1[16] << 8) | h1[17]) != psize))
		{
			close(fd);
			free(pg);
			return rebuild(c);
		}
	}
	orig = count > 0 ? (uint32_t) (st.st_size / psize) : 0;
	if (count > orig)
	{
		/* the file was pages 1 to orig: the pages after it must all be new here */
		size_t		added = 0;

		for (size_t i = 0; i < n; i++)
			added += pg[i] > orig && pg[i] <= count;
		if (added != count - orig)
		{
			close(fd);
			free(pg);
			not_a_page_store(c, "a page is missing");
			return SLCL_OK;
		}
	}
	page = malloc(psize ? psize : 1);
	if (page == NULL)
	{
		r = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (lock_exclusive(fd) != 0)
	{
		r = pf_fail(c, "could not lock", c->opt.page_file);
		goto out;
	}

	/* 1. the journal: original pages that will change or go, and the size */
	jfd = open(jpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (jfd < 0)
	{
		r = pf_fail(c, "could not create", jpath);
		goto out;
	}
	for (size_t i = 0; i < n && count > 0; i++)
	{
		uint8_t		rec[4];

		if (pg[i] > orig)
			break;				/* new pages: the rollback truncates them away */
		if (read_all(fd, page, psize, (off_t) (pg[i] - 1) * psize) != 0)
		{
			r = pf_fail(c, "could not read", c->opt.page_file);
			goto out;
		}
		put_be32(rec, pg[i]);
		if (write_all(jfd, rec, 4, JOURNAL_SECTOR + (off_t) nrec * (psize + 8)) != 0 ||
			write_all(jfd, page, psize, JOURNAL_SECTOR + (off_t) nrec * (psize + 8) + 4) != 0)
		{
			r = pf_fail(c, "could not write", jpath);
			goto out;
		}
		put_be32(rec, page_cksum(nonce, page, psize));
		if (write_all(jfd, rec, 4, JOURNAL_SECTOR + (off_t) nrec * (psize + 8) + 4 + psize) != 0)
		{
			r = pf_fail(c, "could not write", jpath);
			goto out;
		}
		nrec++;
	}
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, journal_magic, 8);
	put_be32(hdr + 8, nrec);
	put_be32(hdr + 12, nonce);
	put_be32(hdr + 16, orig);
	put_be32(hdr + 20, JOURNAL_SECTOR);
	put_be32(hdr + 24, psize ? psize : 4096);
	if (write_all(jfd, hdr, sizeof(hdr), 0) != 0 || fsync(jfd) != 0 || fsync_parent(jpath) != 0)
	{
		r = pf_fail(c, "could not write", jpath);
		goto out;
	}

	/* 2. the new pages and size */
	s = slcli_store_prepare(c, "SELECT val FROM item WHERE gen = ?1 AND ns = 1 AND key = ?2");
	if (s == NULL)
	{
		r = SLCL_ERR_IO;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
	{
		uint8_t		key[4];
		int			rc;

		if (pg[i] > count)
			break;				/* deleted: the truncation takes them */
		put_be32(key, pg[i]);
		sqlite3_bind_int64(s, 1, c->committed.gen);
		sqlite3_bind_blob(s, 2, key, 4, SQLITE_STATIC);
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW || (uint32_t) sqlite3_column_bytes(s, 0) != psize)
		{
			sqlite3_reset(s);
			if (rc == SQLITE_ROW || rc == SQLITE_DONE)
			{
				/* a page of another size, or a gap: leave the file as it was */
				r = SLCL_OK;
				bad = "pages of different sizes";
			}
			else
				r = slcli_db_fail(c, "could not read a page");
			goto rollback;
		}
		if (write_all(fd, sqlite3_column_blob(s, 0), psize, (off_t) (pg[i] - 1) * psize) != 0)
		{
			sqlite3_reset(s);
			r = pf_fail(c, "could not write", c->opt.page_file);
			goto rollback;
		}
		sqlite3_reset(s);
	}
	if (ftruncate(fd, (off_t) count * (psize ? psize : 0)) != 0 || fsync(fd) != 0)
	{
		r = pf_fail(c, "could not write", c->opt.page_file);
		goto rollback;
	}
	slcli_debug_hook(c, "pagefile-written");

	/* 3. commit: the journal goes */
	close(jfd);
	jfd = -1;
	if (unlink(jpath) != 0 || fsync_parent(jpath) != 0)
	{
		r = pf_fail(c, "could not remove", jpath);
		goto out;
	}
	unlock_all(fd);
	close(fd);
	fd = -1;
	r = write_position(c);
	goto out;

rollback:
	unlock_all(fd);
	close(fd);
	fd = -1;
	if (jfd >= 0)
		close(jfd);
	jfd = -1;
	{
		char		why[sizeof(c->err)];
		slcl_rc		r2;

		memcpy(why, c->err, sizeof(why));
		r2 = rollback_journal(c);
		if (r == SLCL_OK && r2 != SLCL_OK)
			r = r2;
		else if (r != SLCL_OK)
			memcpy(c->err, why, sizeof(why));
	}
	if (bad)
		not_a_page_store(c, bad);
out:
	sqlite3_finalize(s);
	if (jfd >= 0)
		close(jfd);
	if (fd >= 0)
	{
		unlock_all(fd);
		close(fd);
	}
	free(page);
	free(pg);
	return r;
}

/*
 * On open: roll back a journal a crash left, and rebuild the file unless
 * it is at the replica's position.
 */
slcl_rc
slcli_pagefile_sync(slcl_client *c)
{
	slcl_rc		r;
	struct stat st;

	if (c->opt.page_file == NULL)
		return SLCL_OK;
	if (stat(c->opt.page_file, &st) == 0)
	{
		int64_t		repairs = c->stats.repairs;

		r = rollback_journal(c);
		if (r != SLCL_OK)
			return r;
		/* rolled back: the position file is the one before; take no chance */
		if (c->stats.repairs != repairs && c->committed.have)
			return rebuild(c);
	}
	if (!c->committed.have || (stat(c->opt.page_file, &st) == 0 && position_is(c, &c->committed)))
		return SLCL_OK;
	return rebuild(c);
}

/*
 * After a commit of the replica that moved it from `before`: bring the
 * file along, by its changed pages when it was at `before` (and the
 * commit did not install a whole new state), else whole.
 */
slcl_rc
slcli_pagefile_commit(slcl_client *c, const slcli_pos *before, int whole)
{
	struct stat st;
	uint32_t	count,
				psize;
	const char *bad;
	slcl_rc		r;

	if (c->opt.page_file == NULL || !c->committed.have)
		return SLCL_OK;
	if (!whole && c->chg.len == 0 && before->have && before->gen == c->committed.gen &&
		before->lsn == c->committed.lsn && strcmp(before->log_id, c->committed.log_id) == 0 &&
		slc_hash_equal(&before->hash, &c->committed.hash))
		return SLCL_OK;			/* the state did not move (counters, old generations) */
	if (!whole && before->have && before->gen == c->committed.gen &&
		stat(c->opt.page_file, &st) == 0 && position_is(c, before))
	{
		if (c->chg.len == 0)
			return write_position(c);	/* a switch, or watermarks only */
		r = page_count(c, &count, &psize, &bad);
		if (r != SLCL_OK)
			return r;
		if (count > 0 || bad != NULL)
			return apply_changes(c);
	}
	return rebuild(c);
}
