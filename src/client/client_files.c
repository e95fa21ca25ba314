/*
 * client_files.c
 *
 * The files of the local replica at the level of records: paths in the
 * directory, framing (u32le length, u64le XXH3-64 checksum seeded with the
 * length, payload), reading framed files back, atomic creation, removal,
 * truncation and fsync.  What the records mean is client_replica.c's and
 * client_download.c's business.
 *
 * Owns: the frame format and the magic check, slcli_create_framed (write
 * name.tmp, fsync, rename, fsync the directory), slcli_rdr_next's verdict
 * on a record (complete, torn or damaged, end of file).
 * Must never: return a record whose checksum does not match, or install a
 * file by rename before its contents are on disk.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <xxhash.h>

void
slcli_path_of(const slcl_client *c, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", c->dir, name);
}

/* dir/name.tmp */
void
slcli_tmp_of(const slcl_client *c, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s.tmp", c->dir, name);
}

int
slcli_fsync_dir(const char *dir)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY);
	int			rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Flush stdio buffers and the file's data to disk. */
int
slcli_flush_sync(FILE *f)
{
	if (fflush(f) != 0)
		return -1;
	return fdatasync(fileno(f));
}

int
slcli_rec_write(FILE *f, const buf *payload)
{
	uint8_t		hdr[FRAME_HDR];

	if (payload->len > UINT32_MAX)
		return -1;
	put_u32(hdr, (uint32_t) payload->len);
	put_u64(hdr + 4, XXH3_64bits_withSeed(payload->p, payload->len,
										  (XXH64_hash_t) payload->len));
	if (fwrite(hdr, 1, FRAME_HDR, f) != FRAME_HDR ||
		(payload->len && fwrite(payload->p, 1, payload->len, f) != payload->len))
		return -1;
	return 0;
}

/*
 * Open a framed file and check its magic.  Returns 1 (ok), 0 (missing),
 * -1 (unreadable: wrong magic or too short), -2 (I/O error, errno set).
 */
int
slcli_rdr_open(rdr *r, const char *path, const char *magic)
{
	struct stat st;
	char		m[MAGIC_LEN];

	memset(r, 0, sizeof(*r));
	r->f = fopen(path, "rb");
	if (r->f == NULL)
		return errno == ENOENT ? 0 : -2;
	if (fstat(fileno(r->f), &st) != 0)
		return -2;
	r->size = st.st_size;
	if (r->size < MAGIC_LEN || fread(m, 1, MAGIC_LEN, r->f) != MAGIC_LEN ||
		memcmp(m, magic, MAGIC_LEN) != 0)
		return -1;
	r->pos = MAGIC_LEN;
	return 1;
}

void
slcli_rdr_close(rdr *r)
{
	if (r->f)
		fclose(r->f);
	free(r->rec.p);
	memset(r, 0, sizeof(*r));
}

/*
 * Next record into r->rec.  1: a record; 0: clean end of file; -1: a torn
 * or damaged record at r->pos (r->pos unchanged); -2: out of memory or a
 * read error.
 */
int
slcli_rdr_next(rdr *r)
{
	uint8_t		hdr[FRAME_HDR];
	uint32_t	len;

	if (r->pos == r->size)
		return 0;
	if (r->size - r->pos < FRAME_HDR)
		return -1;
	if (fread(hdr, 1, FRAME_HDR, r->f) != FRAME_HDR)
		return -1;
	len = get_u32(hdr);
	if ((int64_t) len > r->size - r->pos - FRAME_HDR)
		return -1;
	r->rec.len = 0;
	if (buf_reserve(&r->rec, len) != 0)
		return -2;
	if (len && fread(r->rec.p, 1, len, r->f) != len)
		return -1;
	r->rec.len = len;
	if (XXH3_64bits_withSeed(r->rec.p, len, (XXH64_hash_t) len) != get_u64(hdr + 4))
		return -1;
	r->pos += FRAME_HDR + len;
	return 1;
}

/* Create `name` atomically: write name.tmp with magic + the record, fsync,
 * rename, fsync the directory.  Returns an append handle, or NULL. */
FILE *
slcli_create_framed(slcl_client *c, const char *name, const char *magic,
					const buf *first)
{
	char		path[4096];
	char		tmp[4096];
	FILE	   *f;

	slcli_path_of(c, name, path, sizeof(path));
	slcli_tmp_of(c, name, tmp, sizeof(tmp));
	f = fopen(tmp, "wb");
	if (f == NULL)
	{
		slcli_fail_errno(c, "could not create", tmp);
		return NULL;
	}
	if (fwrite(magic, 1, MAGIC_LEN, f) != MAGIC_LEN || slcli_rec_write(f, first) != 0 ||
		fflush(f) != 0 || fsync(fileno(f)) != 0)
	{
		slcli_fail_errno(c, "could not write", tmp);
		fclose(f);
		unlink(tmp);
		return NULL;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0 || slcli_fsync_dir(c->dir) != 0)
	{
		slcli_fail_errno(c, "could not install", path);
		unlink(tmp);
		return NULL;
	}
	f = fopen(path, "ab");
	if (f == NULL)
		slcli_fail_errno(c, "could not open", path);
	return f;
}

/* Remove a file if it exists (the caller fsyncs the directory). */
int
slcli_remove_file(slcl_client *c, const char *name)
{
	char		path[4096];

	slcli_path_of(c, name, path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
	{
		slcli_fail_errno(c, "could not remove", path);
		return -1;
	}
	return 0;
}

/* Truncate a file to len bytes, durably. */
int
slcli_truncate_file(slcl_client *c, const char *name, int64_t len)
{
	char		path[4096];
	int			fd;

	slcli_path_of(c, name, path, sizeof(path));
	fd = open(path, O_WRONLY);
	if (fd < 0 || ftruncate(fd, (off_t) len) != 0 || fsync(fd) != 0)
	{
		slcli_fail_errno(c, "could not truncate", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}
