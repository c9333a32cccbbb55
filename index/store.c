/*
 * store.c — see store.h for the layout, the write path and the rules.
 *
 * Locks, in the order they may nest:
 *   registry mutex / collection placement mutex (held by collection.c around
 *   the observer calls; an upsert's or delete's is released by
 *   es_log_placed) -> wal_lk (shared by writers from their write() until
 *   their record is durable, so a segment switch never closes a log under a
 *   waiter; exclusive to switch segments) -> man_mu (one manifest write at a
 *   time) -> meta_mu (the table of collection metadata; a leaf).
 *   ck_mu serialises checkpoints; a checkpoint takes collection locks only
 *   through es_collection_save, never while holding wal_lk, man_mu or meta_mu.
 *
 * Group commit: an upsert or delete writes its record (wal_write), notes
 * its lsn, hands the collection its place in line (es_log_placed, which
 * lets the next writer of that collection write), then waits for the group
 * fsync (wal_wait_durable) holding only wal_lk shared.  The collection
 * applies it after that, in log order.
 *
 * Fsync failure: the log refuses every later write (ES_EIO), and so does
 * es_store_checkpoint, until the process restarts — after a failed
 * fdatasync the kernel may have dropped dirty pages, so what the log file
 * holds past its last good sync is unknown, and starting a new segment after
 * it could leave a gap in the lsns that the next start reads as missing
 * records.  The restart replays the log as the disk has it (a lost page
 * shows up as a torn tail, or as damage that --recover truncates).
 *
 * Log records carry the collection name first ([u8 len][name]) and then the
 * body: the parameters for CREATE, nothing for DROP, wal.h's payload
 * formats for UPSERT and DELETE.
 */
#include "alloc.h"
#include "store.h"
#include "crc32c.h"
#include "fileio.h"
#include "le.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lerw.h"
#include "snapshot.h"

#define TAG_MANIFEST 0x494e414du /* "MANI" */
#define TAG_META 0x4154454du     /* "META" */
#define TAG_COLL 0x4c4c4f43u     /* "COLL" */
#define PARAMS_BYTES (5 * 4 + 128) /* + 12 of lexical parameters since v2 */

struct meta {
	char name[ES_COLLECTION_NAME_MAX + 1];
	es_collection_params p;
	uint64_t create_lsn;
	uint64_t snap_lsn; /* 0: no snapshot */
	uint64_t last_lsn; /* last record of this collection (in memory only) */
};

struct es_store {
	char *dir;
	es_store_options o;
	wal_io_hooks hooks;
	es_registry *reg;
	int lock_fd;

	pthread_rwlock_t wal_lk;
	wal *w;
	uint64_t *segs; /* bases of the segments on disk, ascending; last = current */
	size_t nsegs, capsegs;

	pthread_mutex_t man_mu;
	pthread_mutex_t meta_mu;
	struct meta *metas;
	size_t nmeta, capmeta;

	pthread_mutex_t ck_mu;

	pthread_t bg;
	int bg_on, bg_stop, bg_kick;
	pthread_mutex_t bg_mu;
	pthread_cond_t bg_cv;

	es_store_stats *st; /* during open only */

	/* log shipping: where the last reads ended, so a follower's next read
	 * (from where it left off) does not scan its segment from the start */
	pthread_mutex_t hint_mu;
	struct ship_hint {
		uint64_t seg;
		wal_ship_pos pos;
	} hints[8];
	unsigned hint_next;
	/* long poll (es_store_ship_wait): ship_seq counts appends that became
	 * shippable, ship_cv is broadcast at each; ship_stop ends every wait.
	 * ship_mu is never held while wal_lk is taken. */
	pthread_mutex_t ship_mu;
	pthread_cond_t ship_cv; /* CLOCK_MONOTONIC */
	uint64_t ship_seq;
	int ship_stop;
};

void es_store_options_default(es_store_options *o)
{
	memset(o, 0, sizeof *o);
	o->policy = WAL_FSYNC_ALWAYS;
	o->batch_interval_ms = WAL_DEFAULT_BATCH_MS;
	o->checkpoint_bytes = ES_STORE_DEFAULT_CHECKPOINT_BYTES;
}

/* ----------------------------------------------------------------- paths */

static void seg_path(const es_store *s, uint64_t base, char *buf, size_t n)
{
	snprintf(buf, n, "%s/wal/%016" PRIx64 ".log", s->dir, base);
}

/* The options every log segment is opened with: the store's fsync policy
 * and test hooks (the caller adds its base or recovery mode). */
static wal_options log_options(const es_store *s)
{
	wal_options wo;
	wal_options_default(&wo);
	wo.policy = s->o.policy;
	wo.batch_interval_ms = s->o.batch_interval_ms;
	wo.hooks = s->o.hooks;
	return wo;
}

static void snap_path(const es_store *s, const char *name, uint64_t create_lsn,
		      char *buf, size_t n)
{
	snprintf(buf, n, "%s/snap/%s@%" PRIu64 ".snap", s->dir, name, create_lsn);
}

static void manifest_path(const es_store *s, char *buf, size_t n)
{
	snprintf(buf, n, "%s/MANIFEST", s->dir);
}

/* ------------------------------------------------------------------ metas */

static struct meta *meta_find(es_store *s, const char *name)
{
	for (size_t i = 0; i < s->nmeta; i++)
		if (strcmp(s->metas[i].name, name) == 0)
			return &s->metas[i];
	return NULL;
}

static int meta_add(es_store *s, const char *name, const es_collection_params *p,
		    uint64_t create_lsn, uint64_t snap_lsn)
{
	if (s->nmeta == s->capmeta) {
		size_t nc = s->capmeta ? s->capmeta * 2 : 8;
		struct meta *m = es_realloc(s->metas, nc * sizeof *m);
		if (!m)
			return ES_ENOMEM;
		s->metas = m;
		s->capmeta = nc;
	}
	struct meta *m = &s->metas[s->nmeta++];
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", name);
	m->p = *p;
	m->create_lsn = create_lsn;
	m->snap_lsn = snap_lsn;
	return 0;
}

static void meta_remove(es_store *s, const char *name)
{
	struct meta *m = meta_find(s, name);
	if (m)
		*m = s->metas[--s->nmeta];
}

/* ------------------------------------------------------------ encodings */

static void put_params(es_writer *b, const es_collection_params *p)
{
	es_w_u32(b, p->dim);
	es_w_u32(b, (uint32_t)p->metric);
	es_w_u32(b, p->M);
	es_w_u32(b, p->ef_construction);
	es_w_u32(b, (uint32_t)p->quantize_int8);
	char model[128];
	memset(model, 0, sizeof model);
	snprintf(model, sizeof model, "%s", p->model);
	es_w_bytes(b, model, sizeof model);
	es_lexical_params lp = p->lexical; /* unset: the defaults it gets */
	if (!p->lexical_set)
		es_lexical_params_default(&lp);
	uint32_t k1, bb;
	memcpy(&k1, &lp.k1, 4);
	memcpy(&bb, &lp.b, 4);
	es_w_u32(b, k1);
	es_w_u32(b, bb);
	es_w_u32(b, (lp.stemming ? 1u : 0) | (lp.stopwords ? 2u : 0));
}

/* How get_params finds the lexical parameters: a version-1 manifest has
 * none, a version-2 one has them, and a CREATE record has them when its
 * bytes go on (records written before the lexical index do not). */
enum { LEX_NONE, LEX_ALWAYS, LEX_IF_MORE };

static int get_params(es_reader *c, es_collection_params *p, int lex, es_error *err)
{
	uint32_t metric, q8;
	const void *model;
	memset(p, 0, sizeof *p);
	int rc = es_rd_u32(c, &p->dim, err);
	if (!rc) rc = es_rd_u32(c, &metric, err);
	if (!rc) rc = es_rd_u32(c, &p->M, err);
	if (!rc) rc = es_rd_u32(c, &p->ef_construction, err);
	if (!rc) rc = es_rd_u32(c, &q8, err);
	if (!rc) rc = es_rd_view(c, 128, &model, err);
	if (rc)
		return rc;
	if (metric > ES_METRIC_L2 || q8 > 1)
		return es_err(err, ES_ECORRUPT, "%s: bad metric %u or int8 flag %u", c->what,
			      metric, q8);
	p->metric = (es_metric)metric;
	p->quantize_int8 = (int)q8;
	memcpy(p->model, model, sizeof p->model);
	p->model[sizeof p->model - 1] = '\0';
	if (lex == LEX_NONE || (lex == LEX_IF_MORE && es_r_left(c) == 0))
		return 0; /* es_collection_new fills in the defaults */
	uint32_t k1, b, flags;
	rc = es_rd_u32(c, &k1, err);
	if (!rc) rc = es_rd_u32(c, &b, err);
	if (!rc) rc = es_rd_u32(c, &flags, err);
	if (rc)
		return rc;
	if (flags > 3)
		return es_err(err, ES_ECORRUPT, "%s: bad lexical flags %u", c->what, flags);
	memcpy(&p->lexical.k1, &k1, 4);
	memcpy(&p->lexical.b, &b, 4);
	p->lexical.stemming = flags & 1;
	p->lexical.stopwords = (flags & 2) != 0;
	p->lexical_set = 1;
	if (es_lexical_params_check(&p->lexical, NULL))
		return es_err(err, ES_ECORRUPT, "%s: lexical k1 %g / b %g out of range", c->what,
			      (double)p->lexical.k1, (double)p->lexical.b);
	return 0;
}

static int get_name(es_reader *c, char name[ES_COLLECTION_NAME_MAX + 1], es_error *err)
{
	uint8_t len;
	const void *p;
	int rc = es_rd_u8(c, &len, err);
	if (!rc && (len == 0 || len > ES_COLLECTION_NAME_MAX))
		rc = es_err(err, ES_ECORRUPT, "%s: collection name length %u", c->what, len);
	if (!rc)
		rc = es_rd_view(c, len, &p, err);
	if (rc)
		return rc;
	memcpy(name, p, len);
	name[len] = '\0';
	if (es_collection_name_check(name, NULL) != 0)
		return es_err(err, ES_ECORRUPT, "%s: invalid collection name", c->what);
	return 0;
}

static void put_name(es_writer *b, const char *name)
{
	size_t len = strlen(name);
	es_w_u8(b, (uint8_t)len);
	es_w_bytes(b, name, len);
}

/* A memory writer over b for building a record or a section (the header
 * says how running out of memory shows). */
static void build_begin(es_writer *w, es_bytebuf *b)
{
	es_bytebuf_init(b);
	es_writer_init_mem(w, b, NULL);
}

/* ---------------------------------------------------------------- manifest */

/* Write the manifest from the current metas.  Caller holds no store lock. */
static int manifest_write(es_store *s, es_error *err)
{
	es_bytebuf b;
	es_writer w;
	build_begin(&w, &b);
	pthread_mutex_lock(&s->man_mu);
	pthread_mutex_lock(&s->meta_mu);
	es_w_u32(&w, 2); /* version 2: lexical parameters */
	es_w_u32(&w, (uint32_t)s->nmeta);
	for (size_t i = 0; i < s->nmeta; i++) {
		put_name(&w, s->metas[i].name);
		put_params(&w, &s->metas[i].p);
		es_w_u64(&w, s->metas[i].create_lsn);
		es_w_u64(&w, s->metas[i].snap_lsn);
	}
	pthread_mutex_unlock(&s->meta_mu);
	int rc = es_writer_finish(&w) ? ES_ENOMEM : 0;
	if (rc) {
		es_err(err, rc, "out of memory writing the manifest");
	} else {
		char path[4096];
		manifest_path(s, path, sizeof path);
		rc = snapshot_write_file(path, es_store_last_lsn(s), TAG_MANIFEST, b.data,
					 b.len, err);
	}
	pthread_mutex_unlock(&s->man_mu);
	es_bytebuf_free(&b);
	return rc;
}

static int manifest_read(es_store *s, uint64_t *lsn, es_error *err)
{
	char path[4096];
	manifest_path(s, path, sizeof path);
	snapshot *sn;
	*lsn = 0;
	int rc = snapshot_open(path, &sn, err);
	if (rc == ES_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	*lsn = snapshot_lsn(sn);
	const void *d;
	size_t len;
	rc = snapshot_section(sn, TAG_MANIFEST, &d, &len);
	if (rc) {
		rc = es_err(err, ES_ECORRUPT, "%s: no manifest section", path);
		goto out;
	}
	es_reader c;
	es_reader_mem(&c, d, len, NULL);
	c.what = path;
	uint32_t ver, n;
	rc = es_rd_u32(&c, &ver, err);
	if (!rc && ver != 1 && ver != 2)
		rc = es_err(err, ES_EUNSUPPORTED, "%s: manifest version %u", path, ver);
	if (!rc)
		rc = es_rd_u32(&c, &n, err);
	for (uint32_t i = 0; !rc && i < n; i++) {
		char name[ES_COLLECTION_NAME_MAX + 1];
		es_collection_params p;
		uint64_t cl, sl;
		rc = get_name(&c, name, err);
		if (!rc) rc = get_params(&c, &p, ver >= 2 ? LEX_ALWAYS : LEX_NONE, err);
		if (!rc) rc = es_rd_u64(&c, &cl, err);
		if (!rc) rc = es_rd_u64(&c, &sl, err);
		if (!rc && meta_find(s, name))
			rc = es_err(err, ES_ECORRUPT, "%s: collection '%s' listed twice", path, name);
		if (!rc && meta_add(s, name, &p, cl, sl))
			rc = es_err(err, ES_ENOMEM, "out of memory");
	}
	if (!rc)
		rc = es_reader_end(&c, err);
out:
	snapshot_close(sn);
	return rc;
}

/* ---------------------------------------------------------------- appends */

/* A record became shippable: wake the followers' long polls. */
static void ship_notify(es_store *s)
{
	pthread_mutex_lock(&s->ship_mu);
	s->ship_seq++;
	pthread_cond_broadcast(&s->ship_cv);
	pthread_mutex_unlock(&s->ship_mu);
}

/* Append a record for collection name and wait until it is durable per
 * the policy.  Its lsn is noted in the collection's metadata while wal_lk is
 * still held, so a checkpoint (which switches segments under wal_lk
 * exclusive) sees every record appended before the switch.  create_params:
 * for CREATE, the metadata is added.  turn (upserts and deletes): placed in
 * the collection's commit queue right after the write, before the fsync
 * wait, so other writers of the collection can join this fsync. */
static int append_record(es_store *s, uint32_t type, es_writer *rec,
			 const es_bytebuf *b, const char *name,
			 const es_collection_params *create_params, es_log_turn *turn,
			 es_error *err)
{
	if (es_writer_finish(rec) != 0)
		return es_err(err, ES_ENOMEM, "out of memory encoding a log record");
	uint64_t lsn;
	pthread_rwlock_rdlock(&s->wal_lk);
	int rc = wal_write(s->w, type, b->data, b->len, &lsn, err);
	if (!rc) {
		pthread_mutex_lock(&s->meta_mu);
		struct meta *m = meta_find(s, name);
		if (create_params && !m) {
			if (meta_add(s, name, create_params, lsn, 0) == 0)
				s->metas[s->nmeta - 1].last_lsn = lsn;
			else
				rc = es_err(err, ES_ENOMEM, "out of memory");
		} else if (m) {
			m->last_lsn = lsn;
		}
		pthread_mutex_unlock(&s->meta_mu);
		if (turn)
			es_log_placed(turn, lsn);
		if (!rc)
			rc = wal_wait_durable(s->w, lsn, err);
	}
	uint64_t size = rc ? 0 : wal_size_bytes(s->w);
	pthread_rwlock_unlock(&s->wal_lk);
	if (!rc) /* shippable now (durable per the policy): wake long polls */
		ship_notify(s);
	if (!rc && size > s->o.checkpoint_bytes) {
		pthread_mutex_lock(&s->bg_mu);
		s->bg_kick = 1;
		pthread_cond_signal(&s->bg_cv);
		pthread_mutex_unlock(&s->bg_mu);
	}
	return rc;
}

static int obs_create(void *ctx, const char *name, const es_collection_params *p,
		      es_error *err)
{
	es_store *s = ctx;
	es_bytebuf b;
	es_writer w;
	build_begin(&w, &b);
	put_name(&w, name);
	put_params(&w, p);
	int rc = append_record(s, WAL_REC_CREATE, &w, &b, name, p, NULL, err);
	es_bytebuf_free(&b);
	if (rc)
		return rc;
	/* The log already makes the create durable; the manifest is the catalog
	 * for after the log is truncated, so a failure here is retried at the
	 * next checkpoint. */
	manifest_write(s, NULL);
	return 0;
}

static int obs_drop(void *ctx, const char *name, es_error *err)
{
	es_store *s = ctx;
	es_bytebuf b;
	es_writer w;
	build_begin(&w, &b);
	put_name(&w, name);
	int rc = append_record(s, WAL_REC_DROP, &w, &b, name, NULL, NULL, err);
	es_bytebuf_free(&b);
	if (rc)
		return rc;
	uint64_t create_lsn = 0;
	pthread_mutex_lock(&s->meta_mu);
	struct meta *m = meta_find(s, name);
	if (m)
		create_lsn = m->create_lsn;
	meta_remove(s, name);
	pthread_mutex_unlock(&s->meta_mu);
	/* only once no manifest names it may its snapshot go */
	if (manifest_write(s, NULL) == 0 && m) {
		char path[4096];
		snap_path(s, name, create_lsn, path, sizeof path);
		unlink(path);
	}
	return 0;
}

/* A point record: the collection's name, then body (wal.h's encoding of
 * the batch), which is freed.  enc_rc: how encoding the body went (not 0:
 * "cannot encode WHAT for the log", and nothing is written). */
static int append_body(es_store *s, uint32_t type, es_collection *c, wal_buf *body,
		       int enc_rc, const char *what, es_log_turn *turn, es_error *err)
{
	if (enc_rc) {
		wal_buf_free(body);
		return es_err(err, enc_rc, "cannot encode %s for the log", what);
	}
	es_bytebuf b;
	es_writer w;
	build_begin(&w, &b);
	put_name(&w, es_collection_name(c));
	es_w_bytes(&w, body->data, body->len);
	wal_buf_free(body);
	int rc = append_record(s, type, &w, &b, es_collection_name(c), NULL, turn, err);
	es_bytebuf_free(&b);
	return rc;
}

static void to_wal_id(const es_point_id *in, wal_id *out)
{
	out->is_str = in->is_str;
	out->num = in->num;
	out->str = in->str;
	out->len = (uint32_t)in->len;
}

static void from_wal_id(const wal_id *in, es_point_id *out)
{
	out->is_str = in->is_str;
	out->num = in->num;
	out->str = in->str;
	out->len = in->len;
}

/* The ids of a DELETE or PAYLOAD body, after its header. */
static int add_ids(wal_buf *body, const es_point_id *ids, size_t n)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		wal_id id;
		to_wal_id(&ids[i], &id);
		rc = wal_delete_add(body, &id);
	}
	return rc;
}

static int obs_upsert(void *ctx, es_collection *c, const es_point_in *pts,
		      size_t n, es_log_turn *turn, es_error *err)
{
	es_store *s = ctx;
	const es_collection_params *p = es_collection_get_params(c);
	wal_buf body;
	wal_buf_init(&body);
	int text = 0; /* a batch without text logs as before (UPSERT) */
	for (size_t i = 0; i < n; i++)
		text |= pts[i].text != NULL || pts[i].vector == NULL;
	int rc = 0;
	for (size_t i = 0; text && i < n; i++)
		if (pts[i].text_len > UINT32_MAX)
			rc = ES_EINVAL;
	if (!rc)
		rc = wal_upsert_begin(&body, p->dim, (uint32_t)n);
	for (size_t i = 0; !rc && i < n; i++) {
		wal_id id;
		to_wal_id(&pts[i].id, &id);
		if (text)
			rc = wal_upsert_text_add(&body, &id, pts[i].vector, p->dim,
						 pts[i].payload, (uint32_t)pts[i].payload_len,
						 pts[i].text, (uint32_t)pts[i].text_len);
		else
			rc = wal_upsert_add(&body, &id, pts[i].vector, p->dim,
					    pts[i].payload, (uint32_t)pts[i].payload_len);
	}
	return append_body(s, text ? WAL_REC_UPSERT_TEXT : WAL_REC_UPSERT, c, &body, rc,
			   "the batch", turn, err);
}

static int obs_delete(void *ctx, es_collection *c, const es_point_id *ids,
		      size_t n, es_log_turn *turn, es_error *err)
{
	es_store *s = ctx;
	wal_buf body;
	wal_buf_init(&body);
	int rc = wal_delete_begin(&body, (uint32_t)n);
	if (!rc)
		rc = add_ids(&body, ids, n);
	return append_body(s, WAL_REC_DELETE, c, &body, rc, "the ids", turn, err);
}

static int obs_payload(void *ctx, es_collection *c, const char *op, size_t oplen,
		       const es_point_id *ids, size_t n, es_log_turn *turn, es_error *err)
{
	es_store *s = ctx;
	if (oplen > UINT32_MAX || n > UINT32_MAX)
		return es_err(err, ES_EINVAL, "payload update too large for the log");
	wal_buf body;
	wal_buf_init(&body);
	int rc = wal_payload_begin(&body, op, (uint32_t)oplen, (uint32_t)n);
	if (!rc)
		rc = add_ids(&body, ids, n);
	return append_body(s, WAL_REC_PAYLOAD, c, &body, rc, "the payload update", turn,
			   err);
}

static int obs_index(void *ctx, es_collection *c, const char *field, int kind,
		     es_log_turn *turn, es_error *err)
{
	es_bytebuf b;
	es_writer w;
	build_begin(&w, &b);
	put_name(&w, es_collection_name(c));
	es_w_u8(&w, (uint8_t)kind);
	es_w_u32(&w, (uint32_t)strlen(field));
	es_w_bytes(&w, field, strlen(field));
	int rc = append_record(ctx, WAL_REC_PINDEX, &w, &b, es_collection_name(c), NULL,
			       turn, err);
	es_bytebuf_free(&b);
	return rc;
}

/* ------------------------------------------------------------------ replay */

static int replay_index(es_collection *c, const void *d, size_t len, es_error *err)
{
	es_reader r;
	es_reader_mem(&r, d, len, NULL);
	r.what = "payload index record";
	uint8_t kind;
	uint32_t flen = 0;
	const void *fp;
	int rc = es_rd_u8(&r, &kind, err);
	if (!rc)
		rc = es_rd_u32(&r, &flen, err);
	if (!rc && flen > ES_PINDEX_FIELD_MAX)
		rc = es_err(err, ES_ECORRUPT, "payload index field of %u bytes", flen);
	if (!rc)
		rc = es_rd_view(&r, flen, &fp, err);
	if (!rc)
		rc = es_reader_end(&r, err);
	if (rc)
		return rc;
	char field[ES_PINDEX_FIELD_MAX + 1];
	memcpy(field, fp, flen);
	field[flen] = '\0';
	if (kind == 0) { /* two racing drops log twice: the second finds none */
		rc = es_collection_drop_index(c, field, err);
		return rc == ES_ENOTFOUND ? 0 : rc;
	}
	return es_collection_create_index(c, field, (es_pindex_kind)kind, err);
}

static int replay_upsert(es_collection *c, const void *d, size_t len, int text,
			 es_error *err)
{
	wal_reader r;
	int rc = text ? wal_upsert_text_read_begin(&r, d, len, err)
		      : wal_upsert_read_begin(&r, d, len, err);
	if (rc)
		return rc;
	const es_collection_params *p = es_collection_get_params(c);
	if (r.dim != p->dim)
		return es_err(err, ES_ECORRUPT, "upsert of dimension %u into a collection of "
			      "dimension %u", r.dim, p->dim);
	es_point_in *pts = es_calloc(r.n ? r.n : 1, sizeof *pts);
	float *vecs = es_malloc((size_t)(r.n ? r.n : 1) * r.dim * sizeof *vecs);
	if (!pts || !vecs) {
		rc = es_err(err, ES_ENOMEM, "out of memory replaying %u points", r.n);
		goto out;
	}
	for (uint32_t i = 0; !rc && i < r.n; i++) {
		wal_id id;
		const void *pl;
		const char *tx = NULL;
		uint32_t plen, tlen = 0;
		int has_vec = 1;
		float *v = vecs + (size_t)i * r.dim;
		if (text)
			rc = wal_upsert_text_read_next(&r, &id, v, &has_vec, &pl, &plen, &tx,
						       &tlen, err);
		else
			rc = wal_upsert_read_next(&r, &id, v, &pl, &plen, err);
		if (rc)
			break;
		pts[i].text = tx;
		pts[i].text_len = tlen;
		if (!has_vec)
			v = NULL;
		from_wal_id(&id, &pts[i].id);
		pts[i].vector = v;
		/* an upsert logs a point without payload with length 0 too; both
		 * read back as "no payload" */
		pts[i].payload = plen ? pl : NULL;
		pts[i].payload_len = plen;
	}
	if (!rc)
		rc = wal_read_end(&r, err);
	if (!rc)
		rc = es_collection_upsert(c, pts, r.n, err);
out:
	es_free(pts);
	es_free(vecs);
	return rc;
}

/* The ids of a DELETE or PAYLOAD record after its header (r.n of them),
 * then the end check; *out is freed by the caller. */
static int replay_ids(wal_reader *r, es_point_id **out, es_error *err)
{
	es_point_id *ids = *out = es_calloc(r->n ? r->n : 1, sizeof *ids);
	if (!ids)
		return es_err(err, ES_ENOMEM, "out of memory replaying %u ids", r->n);
	int rc = 0;
	for (uint32_t i = 0; !rc && i < r->n; i++) {
		wal_id id;
		rc = wal_delete_read_next(r, &id, err);
		if (!rc)
			from_wal_id(&id, &ids[i]);
	}
	return rc ? rc : wal_read_end(r, err);
}

static int replay_delete(es_collection *c, const void *d, size_t len, es_error *err)
{
	wal_reader r;
	es_point_id *ids = NULL;
	int rc = wal_delete_read_begin(&r, d, len, err);
	if (!rc)
		rc = replay_ids(&r, &ids, err);
	if (!rc)
		rc = es_collection_delete(c, ids, r.n, NULL, err);
	es_free(ids);
	return rc;
}

static int replay_payload(es_collection *c, const void *d, size_t len, es_error *err)
{
	wal_reader r;
	const void *op;
	uint32_t oplen;
	es_point_id *ids = NULL;
	int rc = wal_payload_read_begin(&r, d, len, &op, &oplen, err);
	if (!rc)
		rc = replay_ids(&r, &ids, err);
	if (!rc)
		rc = es_collection_update_payload(c, op, oplen, ids, r.n, NULL, err);
	es_free(ids);
	return rc;
}

static int replay_record(void *ctx, uint64_t lsn, uint32_t type, const void *data,
			 size_t len, es_error *err)
{
	es_store *s = ctx;
	es_reader c;
	es_reader_mem(&c, data, len, NULL);
	c.what = "log record";
	char name[ES_COLLECTION_NAME_MAX + 1];
	int rc = get_name(&c, name, err);
	if (rc)
		return rc;
	es_reader rest = c; /* the body after the name, for the point records */
	const void *body;
	size_t blen = es_r_left(&rest);
	es_r_view(&rest, blen, &body);
	struct meta *m = meta_find(s, name);
	if (type == WAL_REC_CREATE) {
		es_collection_params p;
		rc = get_params(&c, &p, LEX_IF_MORE, err);
		if (!rc)
			rc = es_reader_end(&c, err);
		if (rc)
			return rc;
		if (m && m->create_lsn >= lsn)
			return 0; /* this incarnation (or a later one) is already known */
		if (m)
			return es_err(err, ES_ECORRUPT, "collection '%s' created twice", name);
		rc = es_registry_create(s->reg, name, &p, NULL, err);
		if (!rc && meta_add(s, name, &p, lsn, 0))
			rc = es_err(err, ES_ENOMEM, "out of memory");
		if (!rc && s->st)
			s->st->records_replayed++;
		return rc;
	}
	if (!m || m->create_lsn >= lsn)
		return 0; /* a collection dropped later (or an older incarnation) */
	if (type == WAL_REC_DROP) {
		rc = es_registry_drop(s->reg, name, err);
		if (!rc) {
			meta_remove(s, name);
			if (s->st)
				s->st->records_replayed++;
		}
		return rc;
	}
	if (m->snap_lsn >= lsn)
		return 0; /* the snapshot holds it */
	es_collection *col;
	rc = es_registry_get(s->reg, name, &col, err);
	if (rc)
		return rc;
	m->last_lsn = lsn;
	if (type == WAL_REC_UPSERT || type == WAL_REC_UPSERT_TEXT)
		rc = replay_upsert(col, body, blen, type == WAL_REC_UPSERT_TEXT, err);
	else if (type == WAL_REC_PAYLOAD)
		rc = replay_payload(col, body, blen, err);
	else if (type == WAL_REC_PINDEX)
		rc = replay_index(col, body, blen, err);
	else
		rc = replay_delete(col, body, blen, err);
	es_collection_release(col);
	if (rc && rc != ES_ENOMEM) {
		es_err_prefix(err, rc, "collection '%s'", name);
		if (err)
			err->code = ES_ECORRUPT;
		rc = ES_ECORRUPT;
	}
	if (!rc && s->st)
		s->st->records_replayed++;
	return rc;
}

/* ------------------------------------------------------------------ open */

static int mkdir_p(const char *path, es_error *err)
{
	if (mkdir(path, 0755) == 0 || errno == EEXIST) {
		struct stat sb;
		if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			return 0;
		return es_err(err, ES_EINVAL, "%s: not a directory", path);
	}
	return es_err(err, errno == ENOSPC ? ES_ENOSPC : ES_EIO, "%s: mkdir: %s", path,
		      strerror(errno));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int segs_push(es_store *s, uint64_t base)
{
	if (s->nsegs == s->capsegs) {
		size_t nc = s->capsegs ? s->capsegs * 2 : 8;
		uint64_t *n = es_realloc(s->segs, nc * sizeof *n);
		if (!n)
			return ES_ENOMEM;
		s->segs = n;
		s->capsegs = nc;
	}
	s->segs[s->nsegs++] = base;
	return 0;
}

/* Find segments (and remove leftover temporary files). */
static int scan_dirs(es_store *s, es_error *err)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/wal", s->dir);
	DIR *d = opendir(path);
	if (!d)
		return es_err(err, ES_EIO, "%s: %s", path, strerror(errno));
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) && !rc) {
		size_t l = strlen(e->d_name);
		char full[4400];
		if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0) {
			snprintf(full, sizeof full, "%s/%s", path, e->d_name);
			unlink(full);
			continue;
		}
		uint64_t base;
		char tail[8];
		if (l == 20 && sscanf(e->d_name, "%16" SCNx64 "%4s", &base, tail) == 2 &&
		    strcmp(tail, ".log") == 0 && segs_push(s, base))
			rc = es_err(err, ES_ENOMEM, "out of memory");
	}
	closedir(d);
	if (s->nsegs > 1)
		qsort(s->segs, s->nsegs, sizeof *s->segs, cmp_u64);
	snprintf(path, sizeof path, "%s/snap", s->dir);
	if ((d = opendir(path))) {
		while ((e = readdir(d))) {
			size_t l = strlen(e->d_name);
			if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0) {
				char full[4400];
				snprintf(full, sizeof full, "%s/%s", path, e->d_name);
				unlink(full);
			}
		}
		closedir(d);
	}
	return rc;
}

static int load_snapshot(es_store *s, struct meta *m, es_error *err)
{
	char path[4096];
	snap_path(s, m->name, m->create_lsn, path, sizeof path);
	snapshot *sn;
	int rc = snapshot_open(path, &sn, err);
	if (rc == ES_ENOTFOUND) {
		if (m->snap_lsn > 0)
			return es_err(err, ES_ECORRUPT, "%s: the manifest lists a snapshot at lsn %"
				      PRIu64 " but the file is missing", path, m->snap_lsn);
		return es_registry_create(s->reg, m->name, &m->p, NULL, err);
	}
	if (rc)
		return rc;
	const void *d;
	size_t len;
	es_collection *c = NULL;
	char name[ES_COLLECTION_NAME_MAX + 1];
	uint64_t cl = 0;
	es_reader cur;
	if (snapshot_section(sn, TAG_META, &d, &len) != 0) {
		rc = es_err(err, ES_ECORRUPT, "%s: no META section", path);
		goto out;
	}
	es_reader_mem(&cur, d, len, NULL);
	cur.what = path;
	rc = get_name(&cur, name, err);
	if (!rc)
		rc = es_rd_u64(&cur, &cl, err);
	if (!rc && (strcmp(name, m->name) != 0 || cl != m->create_lsn))
		rc = es_err(err, ES_ECORRUPT, "%s: holds collection '%s' created at lsn %" PRIu64
			    ", not the one the manifest names", path, name, cl);
	if (rc)
		goto out;
	FILE *f = snapshot_section_fopen(sn, TAG_COLL);
	if (!f) {
		rc = es_err(err, ES_ECORRUPT, "%s: no COLL section", path);
		goto out;
	}
	rc = es_collection_load(f, m->name, es_registry_payload_hooks(s->reg), &c, err);
	fclose(f);
	if (rc) {
		es_err_prefix(err, rc, "%s", path);
		goto out;
	}
	rc = es_registry_add(s->reg, c, err);
	if (!rc) {
		/* the manifest may say more: a checkpoint that found the collection
		 * unchanged since this file moved its lsn forward without rewriting */
		if (snapshot_lsn(sn) > m->snap_lsn)
			m->snap_lsn = snapshot_lsn(sn);
		s->st->snapshots_loaded++;
		s->st->points_loaded += es_collection_count(c);
	}
	es_collection_release(c);
out:
	snapshot_close(sn);
	return rc;
}

static void *bg_main(void *arg);
static int snapshot_one(es_store *s, es_collection *c, uint64_t rot,
			uint64_t min_lsn, es_error *err);

/* After replay the log may end before `claimed`, the highest lsn a
 * snapshot, the manifest or a collection's creation says exists: its tail
 * was lost (a power cut under --fsync batch/never, or --recover cut it).
 * New records must not reuse those lsns (the next start would take them for
 * records the snapshots already hold and skip them), and the log's lsns
 * must stay gapless, so: snapshot every collection at `claimed` (memory
 * holds everything that survived), write the manifest, delete every
 * segment, and start an empty one based at `claimed`.  A crash at any point
 * leaves a directory that opens: before the manifest, the old state; after
 * it, segments are all covered, and with none left the open creates the
 * segment at the manifest's lsn. */
static int rebase_log(es_store *s, uint64_t claimed, es_error *err)
{
	es_collection **cols = NULL;
	size_t n = 0;
	int rc = es_registry_list(s->reg, &cols, &n, err);
	for (size_t i = 0; i < n; i++) {
		if (!rc)
			rc = snapshot_one(s, cols[i], claimed, claimed, err);
		es_collection_release(cols[i]);
	}
	es_free(cols);
	if (!rc)
		rc = manifest_write(s, err);
	if (rc)
		return rc;
	wal_close(s->w);
	s->w = NULL;
	char path[4096];
	for (size_t k = 0; k < s->nsegs; k++) {
		seg_path(s, s->segs[k], path, sizeof path);
		if (unlink(path) != 0 && errno != ENOENT)
			return es_err(err, ES_EIO, "%s: %s", path, strerror(errno));
	}
	s->nsegs = 0;
	if ((rc = segs_push(s, claimed)))
		return es_err(err, rc, "out of memory");
	seg_path(s, claimed, path, sizeof path);
	wal_options wo = log_options(s);
	wo.base_lsn = claimed;
	return wal_open(path, &wo, NULL, NULL, NULL, &s->w, err);
}

static int replay_segments(es_store *s, uint64_t start_lsn, es_error *err)
{
	int rc = 0;
	char path[4096];
	wal_options wo = log_options(s);
	wo.recover = s->o.recover;
	if (s->nsegs == 0) {
		wo.base_lsn = start_lsn;
		if ((rc = segs_push(s, start_lsn)))
			return es_err(err, rc, "out of memory");
	}
	/* every collection needs the log from where its snapshot (or its
	 * creation) left off */
	for (size_t i = 0; i < s->nmeta; i++) {
		uint64_t need = s->metas[i].snap_lsn > s->metas[i].create_lsn
					? s->metas[i].snap_lsn : s->metas[i].create_lsn;
		if (need < s->segs[0]) {
			seg_path(s, s->segs[0], path, sizeof path);
			return es_err(err, ES_ECORRUPT, "%s: the log starts after lsn %" PRIu64
				      " but collection '%s' needs records from lsn %" PRIu64
				      " (log segments are missing)", path, s->segs[0],
				      s->metas[i].name, need + 1);
		}
	}
	uint64_t expect = s->segs[0];
	for (size_t k = 0; k < s->nsegs; k++) {
		seg_path(s, s->segs[k], path, sizeof path);
		if (s->segs[k] != expect)
			return es_err(err, ES_ECORRUPT, "%s: segment starts after lsn %" PRIu64
				      " but the previous one ends at lsn %" PRIu64
				      " (records are missing)", path, s->segs[k], expect);
		int last = k + 1 == s->nsegs;
		wal_replay_stats st;
		wal *w = NULL;
		wo.base_lsn = s->segs[k];
		rc = wal_open(path, &wo, replay_record, s, &st, &w, err);
		if (rc)
			return rc;
		if (st.base_lsn != s->segs[k]) {
			wal_close(w);
			return es_err(err, ES_ECORRUPT, "%s: header says base lsn %" PRIu64
				      ", the file name %" PRIu64, path, st.base_lsn, s->segs[k]);
		}
		s->st->torn_bytes += st.torn_bytes;
		s->st->truncated_bytes += st.truncated_bytes;
		expect = st.last_lsn;
		if (last)
			s->w = w;
		else
			wal_close(w);
	}
	return 0;
}

int es_store_open(const char *dir, const es_store_options *opts, es_registry *reg,
		  es_store_stats *stats, es_store **out, es_error *err)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	*out = NULL;
	es_store_stats st_local;
	es_store_stats *st = stats ? stats : &st_local;
	memset(st, 0, sizeof *st);
	es_store *s = es_calloc(1, sizeof *s);
	if (!s || !(s->dir = es_strdup(dir))) {
		es_free(s);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	s->lock_fd = -1;
	s->reg = reg;
	s->st = st;
	if (opts)
		s->o = *opts;
	else
		es_store_options_default(&s->o);
	if (s->o.checkpoint_bytes == 0)
		s->o.checkpoint_bytes = ES_STORE_DEFAULT_CHECKPOINT_BYTES;
	if (s->o.hooks) {
		s->hooks = *s->o.hooks;
		s->o.hooks = &s->hooks;
	}
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->wal_lk, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&s->man_mu, NULL);
	pthread_mutex_init(&s->meta_mu, NULL);
	pthread_mutex_init(&s->ck_mu, NULL);
	pthread_mutex_init(&s->bg_mu, NULL);
	pthread_cond_init(&s->bg_cv, NULL);
	pthread_mutex_init(&s->hint_mu, NULL);
	pthread_mutex_init(&s->ship_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->ship_cv, &ca);
	pthread_condattr_destroy(&ca);

	char path[4096];
	int rc = mkdir_p(dir, err);
	snprintf(path, sizeof path, "%s/wal", dir);
	if (!rc)
		rc = mkdir_p(path, err);
	snprintf(path, sizeof path, "%s/snap", dir);
	if (!rc)
		rc = mkdir_p(path, err);
	if (rc)
		goto fail;
	snprintf(path, sizeof path, "%s/LOCK", dir);
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->lock_fd < 0) {
		rc = es_err(err, ES_EIO, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		rc = es_err(err, ES_EBUSY, "%s: the data directory is in use by another "
			    "embedsrv process", dir);
		goto fail;
	}
	uint64_t man_lsn;
	rc = manifest_read(s, &man_lsn, err);
	if (rc)
		goto fail;
	uint64_t start = man_lsn;
	for (size_t i = 0; i < s->nmeta && !rc; i++) {
		rc = load_snapshot(s, &s->metas[i], err);
		if (s->metas[i].snap_lsn > start)
			start = s->metas[i].snap_lsn;
		if (s->metas[i].create_lsn > start)
			start = s->metas[i].create_lsn;
	}
	if (!rc)
		rc = scan_dirs(s, err);
	if (!rc)
		rc = replay_segments(s, start, err);
	if (!rc && wal_last_lsn(s->w) < start)
		rc = rebase_log(s, start, err);
	if (rc)
		goto fail;
	if (!s->o.follower) {
		es_mutation_observer obs = {s, obs_create, obs_drop, obs_upsert, obs_delete,
					    obs_payload, obs_index};
		es_registry_set_observer(reg, &obs);
	}
	if (pthread_create(&s->bg, NULL, bg_main, s) == 0)
		s->bg_on = 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	st->collections = s->nmeta;
	st->last_lsn = wal_last_lsn(s->w);
	st->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	s->st = NULL;
	*out = s;
	return 0;
fail:
	s->st = NULL;
	es_store_close(s, 0, NULL);
	return rc;
}

/* -------------------------------------------------------------- checkpoint */

struct lsn_note {
	es_store *s;
	uint64_t lsn;
};

/* The snapshot holds every record of its collection up to the lsn noted
 * here and none after it: the last lsn in the log when the collection has
 * nothing logged-but-unapplied (no record of it can be placed meanwhile),
 * else just before the first such record. */
static void note_lsn(void *ctx, int pending, uint64_t oldest)
{
	struct lsn_note *n = ctx;
	n->lsn = pending ? oldest - 1 : es_store_last_lsn(n->s);
}

/* Snapshot one collection.  rot: the lsn the log was switched at.  A
 * collection with a snapshot and no record since is not rewritten: its
 * snapshot still describes it at lsn rot, so only its lsn moves.  min_lsn:
 * the lsn written is at least this (rebase_log; 0 otherwise). */
static int snapshot_one(es_store *s, es_collection *c, uint64_t rot,
			uint64_t min_lsn, es_error *err)
{
	const char *name = es_collection_name(c);
	pthread_mutex_lock(&s->meta_mu);
	struct meta *m = meta_find(s, name);
	uint64_t cl = m ? m->create_lsn : 0;
	int idle = m && m->snap_lsn > 0 && m->last_lsn <= m->snap_lsn;
	if (idle && rot > m->snap_lsn)
		m->snap_lsn = rot;
	pthread_mutex_unlock(&s->meta_mu);
	if (!m || idle)
		return 0; /* dropped meanwhile, or unchanged */
	char path[4096];
	snap_path(s, name, cl, path, sizeof path);
	snapshot_writer *w;
	int rc = snapshot_writer_new(path, 0, NULL, &w, err);
	if (rc)
		return rc;
	es_bytebuf b;
	es_writer mw;
	build_begin(&mw, &b);
	put_name(&mw, name);
	es_w_u64(&mw, cl);
	rc = es_writer_finish(&mw) ? es_err(err, ES_ENOMEM, "out of memory")
				   : snapshot_write_section(w, TAG_META, b.data, b.len, err);
	es_bytebuf_free(&b);
	struct lsn_note note = {s, 0};
	if (!rc)
		rc = snapshot_section_begin(w, TAG_COLL, err);
	if (!rc) {
		FILE *f = snapshot_section_stream(w);
		if (!f) {
			rc = es_err(err, ES_ENOMEM, "out of memory");
		} else {
			rc = es_collection_save(c, f, note_lsn, &note, err);
			if (fclose(f) != 0 && !rc)
				rc = es_err(err, ES_EIO, "%s: write failed", path);
		}
	}
	if (!rc)
		rc = snapshot_section_end(w, err);
	if (rc) {
		/* the writer's sticky error says more than "write failed" */
		es_error inner;
		if (snapshot_writer_commit(w, &inner) != 0 && (rc == ES_EIO || rc == ES_ENOSPC)) {
			if (err)
				*err = inner;
			rc = inner.code;
		}
		return rc;
	}
	if (note.lsn < min_lsn)
		note.lsn = min_lsn;
	snapshot_writer_set_lsn(w, note.lsn);
	rc = snapshot_writer_commit(w, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->meta_mu);
	m = meta_find(s, name);
	int current = m && m->create_lsn == cl;
	if (current && note.lsn > m->snap_lsn)
		m->snap_lsn = note.lsn;
	pthread_mutex_unlock(&s->meta_mu);
	if (!current)
		unlink(path); /* dropped while it was written */
	return 0;
}

/* Switch to a fresh segment so everything before it can be deleted once
 * snapshots cover it.  Caller holds ck_mu. */
static int rotate(es_store *s, es_error *err)
{
	int rc = 0;
	pthread_rwlock_wrlock(&s->wal_lk);
	/* No writer is between its write and its sync now.  The new segment
	 * starts at the old one's last lsn, so the old one must be whole on
	 * disk (it may not be under --fsync batch/never) and must not have
	 * failed (see "Fsync failure" above): else a crash could leave a gap. */
	if (wal_failed(s->w) || wal_sync(s->w, NULL) != 0) {
		rc = es_err(err, ES_EIO, "snapshots are refused: an fdatasync of the "
			    "write-ahead log failed, so the log past its last good sync is "
			    "unknown; restart the server to recover from the log (reads go on)");
		goto out;
	}
	uint64_t last = wal_last_lsn(s->w);
	uint64_t cur = s->segs[s->nsegs - 1];
	if (last == cur)
		goto out; /* nothing new since the last switch */
	char path[4096];
	seg_path(s, last, path, sizeof path);
	wal_options wo = log_options(s);
	wo.base_lsn = last;
	wo.base_crc = wal_last_crc(s->w); /* a follower's check across segments */
	unlink(path); /* a leftover from a failed earlier attempt */
	wal *nw;
	rc = wal_open(path, &wo, NULL, NULL, NULL, &nw, err);
	if (rc)
		goto out;
	if (segs_push(s, last)) {
		wal_close(nw);
		unlink(path);
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	wal *old = s->w;
	s->w = nw;
	wal_close(old);
out:
	pthread_rwlock_unlock(&s->wal_lk);
	return rc;
}

/* The lsn up to which every collection's snapshot (or creation) covers the
 * log: records after it are needed.  Caller holds meta_mu. */
static uint64_t covered_lsn(es_store *s)
{
	uint64_t covered = UINT64_MAX;
	for (size_t i = 0; i < s->nmeta; i++) {
		uint64_t need = s->metas[i].snap_lsn > s->metas[i].create_lsn
					? s->metas[i].snap_lsn : s->metas[i].create_lsn;
		if (need < covered)
			covered = need;
	}
	return covered;
}

static void delete_covered_segments(es_store *s)
{
	pthread_mutex_lock(&s->meta_mu);
	uint64_t covered = covered_lsn(s);
	pthread_mutex_unlock(&s->meta_mu);
	pthread_rwlock_rdlock(&s->wal_lk);
	size_t k = 0, ndel = 0;
	char path[4096];
	/* segment k holds lsns (segs[k], segs[k+1]] */
	while (ndel + 1 < s->nsegs && s->segs[ndel + 1] <= covered)
		ndel++;
	/* keep the newest covered segments up to retain_bytes, for followers
	 * that fell behind (log shipping) */
	uint64_t kept = 0;
	while (ndel > 0 && s->o.retain_bytes) {
		struct stat sb;
		seg_path(s, s->segs[ndel - 1], path, sizeof path);
		uint64_t sz = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
		if (kept + sz > s->o.retain_bytes)
			break;
		kept += sz;
		ndel--;
	}
	while (k < ndel) {
		seg_path(s, s->segs[k], path, sizeof path);
		if (unlink(path) != 0 && errno != ENOENT)
			break;
		k++;
	}
	if (k) {
		memmove(s->segs, s->segs + k, (s->nsegs - k) * sizeof *s->segs);
		s->nsegs -= k;
		es_fsync_parent_dir(path, NULL);
	}
	pthread_rwlock_unlock(&s->wal_lk);
}

int es_store_checkpoint(es_store *s, const char *name, es_error *err)
{
	int rc = 0;
	es_collection **cols = NULL;
	size_t n = 0;
	pthread_mutex_lock(&s->ck_mu);
	if (name) {
		es_collection *c;
		rc = es_registry_get(s->reg, name, &c, err);
		if (rc)
			goto out;
		cols = es_malloc(sizeof *cols);
		if (!cols) {
			es_collection_release(c);
			rc = es_err(err, ES_ENOMEM, "out of memory");
			goto out;
		}
		cols[0] = c;
		n = 1;
	} else {
		rc = es_registry_list(s->reg, &cols, &n, err);
		if (rc)
			goto out;
	}
	rc = rotate(s, err);
	pthread_rwlock_rdlock(&s->wal_lk);
	uint64_t rot = s->segs[s->nsegs - 1];
	pthread_rwlock_unlock(&s->wal_lk);
	for (size_t i = 0; i < n && !rc; i++)
		rc = snapshot_one(s, cols[i], rot, 0, err);
	if (!rc)
		rc = manifest_write(s, err);
	if (!rc)
		delete_covered_segments(s);
out:
	for (size_t i = 0; i < n; i++)
		es_collection_release(cols[i]);
	es_free(cols);
	pthread_mutex_unlock(&s->ck_mu);
	return rc;
}

static void *bg_main(void *arg)
{
	es_store *s = arg;
	pthread_mutex_lock(&s->bg_mu);
	while (!s->bg_stop) {
		if (!s->bg_kick) {
			pthread_cond_wait(&s->bg_cv, &s->bg_mu);
			continue;
		}
		s->bg_kick = 0;
		pthread_mutex_unlock(&s->bg_mu);
		es_error e;
		if (es_store_log_bytes(s) > s->o.checkpoint_bytes &&
		    es_store_checkpoint(s, NULL, &e) != 0)
			fprintf(stderr, "embedsrv: automatic snapshot failed: %s\n", e.msg);
		pthread_mutex_lock(&s->bg_mu);
	}
	pthread_mutex_unlock(&s->bg_mu);
	return NULL;
}

/* ------------------------------------------------------------------- close */

int es_store_close(es_store *s, int final_checkpoint, es_error *err)
{
	if (!s)
		return 0;
	int rc = 0;
	if (s->bg_on) {
		pthread_mutex_lock(&s->bg_mu);
		s->bg_stop = 1;
		pthread_cond_signal(&s->bg_cv);
		pthread_mutex_unlock(&s->bg_mu);
		pthread_join(s->bg, NULL);
	}
	if (final_checkpoint && s->w)
		rc = es_store_checkpoint(s, NULL, err);
	if (s->w && !s->o.follower) /* opened: the observer is ours */
		es_registry_set_observer(s->reg, NULL);
	wal_close(s->w);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	pthread_rwlock_destroy(&s->wal_lk);
	pthread_mutex_destroy(&s->man_mu);
	pthread_mutex_destroy(&s->meta_mu);
	pthread_mutex_destroy(&s->ck_mu);
	pthread_mutex_destroy(&s->bg_mu);
	pthread_cond_destroy(&s->bg_cv);
	pthread_mutex_destroy(&s->hint_mu);
	pthread_mutex_destroy(&s->ship_mu);
	pthread_cond_destroy(&s->ship_cv);
	es_free(s->segs);
	es_free(s->metas);
	es_free(s->dir);
	es_free(s);
	return rc;
}

/* The log's counters under wal_lk, so a segment switch is never half seen. */
static wal_state log_state(es_store *s)
{
	pthread_rwlock_rdlock(&s->wal_lk);
	wal_state st = wal_get_state(s->w);
	pthread_rwlock_unlock(&s->wal_lk);
	return st;
}

uint64_t es_store_log_bytes(es_store *s)
{
	return log_state(s).end;
}

uint64_t es_store_last_lsn(es_store *s)
{
	return log_state(s).last_lsn;
}

uint32_t es_store_last_crc(es_store *s)
{
	return log_state(s).last_crc;
}

/* ============================================================ log shipping */

/* ------------------------------------------------------------ primary side */

int es_store_ship_wait(es_store *s, uint64_t from, uint32_t wait_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	uint64_t ns = (uint64_t)dl.tv_nsec + (uint64_t)wait_ms * 1000000u;
	dl.tv_sec += (time_t)(ns / 1000000000u);
	dl.tv_nsec = (long)(ns % 1000000000u);
	pthread_mutex_lock(&s->ship_mu);
	for (;;) {
		uint64_t seq = s->ship_seq;
		if (s->ship_stop)
			break;
		pthread_mutex_unlock(&s->ship_mu);
		uint64_t ship, ship_end;
		pthread_rwlock_rdlock(&s->wal_lk);
		wal_shippable(s->w, &ship, &ship_end);
		pthread_rwlock_unlock(&s->wal_lk);
		if (ship != from) /* news, or an answer that is an error (gone/ahead) */
			return 1;
		pthread_mutex_lock(&s->ship_mu);
		while (s->ship_seq == seq && !s->ship_stop)
			if (pthread_cond_timedwait(&s->ship_cv, &s->ship_mu, &dl) == ETIMEDOUT) {
				pthread_mutex_unlock(&s->ship_mu);
				return 0;
			}
	}
	pthread_mutex_unlock(&s->ship_mu);
	return -1;
}

void es_store_ship_stop(es_store *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->ship_mu);
	s->ship_stop = 1;
	pthread_cond_broadcast(&s->ship_cv);
	pthread_mutex_unlock(&s->ship_mu);
}

int es_store_ship_log(es_store *s, uint64_t from, size_t max_bytes, wal_buf *out,
		      es_store_ship *info, es_error *err)
{
	memset(info, 0, sizeof *info);
	uint64_t ship, ship_end;
	pthread_rwlock_rdlock(&s->wal_lk);
	wal_shippable(s->w, &ship, &ship_end);
	info->last_lsn = ship;
	info->first_lsn = s->segs[0];
	if (from > ship) {
		pthread_rwlock_unlock(&s->wal_lk);
		return es_err(err, ES_ERANGE, "lsn %" PRIu64 " is past the end of this log (its "
			      "last record is lsn %" PRIu64 "): the follower holds records this "
			      "server does not have (was it restored from an older backup?)",
			      from, ship);
	}
	if (from < s->segs[0]) {
		pthread_rwlock_unlock(&s->wal_lk);
		return es_err(err, ES_ENOTFOUND, "lsn %" PRIu64 " is older than the log this "
			      "server keeps (it starts after lsn %" PRIu64 "; older records are in "
			      "snapshots): bootstrap again from GET /v1/replication/snapshot",
			      from, s->segs[0]);
	}
	size_t k = s->nsegs - 1;
	while (s->segs[k] > from)
		k--;
	uint64_t seg = s->segs[k];
	int current = k + 1 == s->nsegs;
	char path[4096];
	seg_path(s, seg, path, sizeof path);
	/* opened under the lock: a checkpoint may delete the file right after */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int e = errno;
	pthread_rwlock_unlock(&s->wal_lk);
	if (fd < 0)
		return es_err(err, ES_EIO, "%s: %s", path, strerror(e));
	uint64_t limit = ship_end;
	struct stat sb;
	if (!current) {
		if (fstat(fd, &sb) != 0) {
			close(fd);
			return es_err(err, ES_EIO, "%s: %s", path, strerror(errno));
		}
		limit = (uint64_t)sb.st_size;
	}
	wal_ship_pos hint = {0, 0, 0}, prev, end;
	int have_hint = 0;
	pthread_mutex_lock(&s->hint_mu);
	for (size_t i = 0; i < sizeof s->hints / sizeof s->hints[0]; i++)
		if (s->hints[i].seg == seg && s->hints[i].pos.lsn == from && s->hints[i].pos.off) {
			hint = s->hints[i].pos;
			have_hint = 1;
			break;
		}
	pthread_mutex_unlock(&s->hint_mu);
	int rc = wal_ship_read(fd, limit, from, have_hint ? &hint : NULL, max_bytes, out,
			       &prev, &end, err);
	close(fd);
	if (rc) {
		es_err_prefix(err, rc, "%s", path);
		return rc == ES_ENOMEM ? rc : ES_EIO;
	}
	if (end.lsn > from) {
		pthread_mutex_lock(&s->hint_mu);
		unsigned slot = s->hint_next++ % (sizeof s->hints / sizeof s->hints[0]);
		for (size_t i = 0; i < sizeof s->hints / sizeof s->hints[0]; i++)
			if (s->hints[i].seg == seg && s->hints[i].pos.lsn == from)
				slot = (unsigned)i; /* move this follower's place forward */
		s->hints[slot].seg = seg;
		s->hints[slot].pos = end;
		pthread_mutex_unlock(&s->hint_mu);
	}
	info->prev_crc = prev.crc;
	info->records = end.lsn - from;
	return 0;
}

#define BUNDLE_MAGIC "ESREPL01"
#define BUNDLE_MAX_FILES 65536u
#define EXTRACT_KICK_BYTES ((uint64_t)8 << 20)

struct bundle_file {
	char rel[ES_COLLECTION_NAME_MAX + 64];
	int fd;
	uint64_t size;
};

/* A bundle being read out (see store.h): the files are open, their bytes
 * are read when the reader gets to them.  Where the reader is: `i` the
 * file (n: the end marker), `part` within its entry (0 the entry head:
 * u16 path length, path, u64 size; 1 the bytes; 2 their CRC32C), `off`
 * within that part; the bundle head (magic, lsn) comes before file 0. */
struct es_bundle {
	struct bundle_file *fs;
	size_t n, i;
	unsigned part;
	int head_done;
	uint64_t off, lsn, size, pos;
	uint32_t crc;
	int failed;
};

static int write_full(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int bundle_add(struct bundle_file **fs, size_t *n, size_t *cap, const char *dir,
		      const char *rel, uint64_t size_limit, es_error *err)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct bundle_file *x = es_realloc(*fs, nc * sizeof *x);
		if (!x || nc > BUNDLE_MAX_FILES)
			return es_err(err, ES_ENOMEM, "out of memory");
		*fs = x;
		*cap = nc;
	}
	char path[4400];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* a manifest not written yet, a snapshot just dropped */
		return es_err(err, ES_EIO, "%s: %s", path, strerror(errno));
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		close(fd);
		return es_err(err, ES_EIO, "%s: %s", path, strerror(errno));
	}
	struct bundle_file *f = &(*fs)[(*n)++];
	snprintf(f->rel, sizeof f->rel, "%s", rel);
	f->fd = fd;
	f->size = (uint64_t)sb.st_size < size_limit ? (uint64_t)sb.st_size : size_limit;
	return 0;
}

void es_bundle_free(es_bundle *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		close(b->fs[i].fd);
	es_free(b->fs);
	es_free(b);
}

int es_bundle_open(es_store *s, es_bundle **out, es_error *err)
{
	*out = NULL;
	/* a fresh snapshot first: the bundle is then mostly snapshots (which load
	 * without rebuilding the graph) and a short log */
	int rc = es_store_checkpoint(s, NULL, err);
	if (rc)
		return rc;
	es_bundle *b = es_calloc(1, sizeof *b);
	if (!b)
		return es_err(err, ES_ENOMEM, "out of memory");
	size_t cap = 0;
	uint64_t ship_end = 0;
	/* No checkpoint runs (ck_mu) and no manifest is written (man_mu) while
	 * the files are opened; what is open stays readable whatever happens
	 * to the names after (snapshots and the manifest are replaced by
	 * rename, never rewritten; a log segment only grows, and only its first
	 * ship_end bytes are sent). */
	pthread_mutex_lock(&s->ck_mu);
	pthread_mutex_lock(&s->man_mu);
	rc = bundle_add(&b->fs, &b->n, &cap, s->dir, "MANIFEST", UINT64_MAX, err);
	char path[4096];
	snprintf(path, sizeof path, "%s/snap", s->dir);
	DIR *d = rc ? NULL : opendir(path);
	if (!rc && !d)
		rc = es_err(err, ES_EIO, "%s: %s", path, strerror(errno));
	struct dirent *e;
	while (d && !rc && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l > 5 && l < ES_COLLECTION_NAME_MAX + 40 &&
		    strcmp(e->d_name + l - 5, ".snap") == 0) {
			char rel[ES_COLLECTION_NAME_MAX + 64];
			snprintf(rel, sizeof rel, "snap/%s", e->d_name);
			rc = bundle_add(&b->fs, &b->n, &cap, s->dir, rel, UINT64_MAX, err);
		}
	}
	if (d)
		closedir(d);
	pthread_mutex_unlock(&s->man_mu);
	/* Every lsn the manifest and the snapshots claim was written before
	 * this sync, so the log copied below reaches at least that far. */
	pthread_rwlock_rdlock(&s->wal_lk);
	if (!rc)
		rc = wal_sync(s->w, err);
	if (!rc)
		wal_shippable(s->w, &b->lsn, &ship_end);
	/* the segments some collection still needs (not those kept only for
	 * followers that fell behind: this one starts from the snapshots) */
	pthread_mutex_lock(&s->meta_mu);
	uint64_t covered = covered_lsn(s);
	pthread_mutex_unlock(&s->meta_mu);
	size_t k0 = 0;
	while (k0 + 1 < s->nsegs && s->segs[k0 + 1] <= covered)
		k0++;
	for (size_t k = k0; k < s->nsegs && !rc; k++) {
		char rel[64];
		snprintf(rel, sizeof rel, "wal/%016" PRIx64 ".log", s->segs[k]);
		rc = bundle_add(&b->fs, &b->n, &cap, s->dir, rel,
				k + 1 == s->nsegs ? ship_end : UINT64_MAX, err);
	}
	pthread_rwlock_unlock(&s->wal_lk);
	pthread_mutex_unlock(&s->ck_mu);
	if (rc) {
		es_bundle_free(b);
		return rc;
	}
	b->size = 16 + 2;
	for (size_t i = 0; i < b->n; i++)
		b->size += 2 + strlen(b->fs[i].rel) + 8 + b->fs[i].size + 4;
	*out = b;
	return 0;
}

uint64_t es_bundle_lsn(const es_bundle *b)
{
	return b->lsn;
}

uint64_t es_bundle_size(const es_bundle *b)
{
	return b->size;
}

/* The bytes of the current part when it is not file data: the bundle
 * head, an entry head, a CRC or the end marker.  Returns their count. */
static size_t bundle_small_part(const es_bundle *b, unsigned char *p)
{
	if (!b->head_done) {
		memcpy(p, BUNDLE_MAGIC, 8);
		put_u64(p + 8, b->lsn);
		return 16;
	}
	if (b->i == b->n) {
		put_u16(p, 0);
		return 2;
	}
	const struct bundle_file *f = &b->fs[b->i];
	if (b->part == 2) {
		put_u32(p, b->crc);
		return 4;
	}
	size_t plen = strlen(f->rel);
	put_u16(p, (uint16_t)plen);
	memcpy(p + 2, f->rel, plen);
	put_u64(p + 2 + plen, f->size);
	return 2 + plen + 8;
}

/* Step to the next part. */
static void bundle_next_part(es_bundle *b)
{
	b->off = 0;
	if (!b->head_done) {
		b->head_done = 1;
	} else if (b->part < 2) {
		b->part++;
		if (b->part == 1)
			b->crc = 0;
	} else {
		b->part = 0;
		b->i++;
	}
}

ssize_t es_bundle_read(es_bundle *b, void *buf, size_t n, es_error *err)
{
	unsigned char *dst = buf;
	size_t got = 0;
	if (b->failed)
		return es_err(err, ES_EIO, "the snapshot bundle failed earlier");
	while (got < n && b->pos < b->size) {
		if (b->head_done && b->i < b->n && b->part == 1) {
			const struct bundle_file *f = &b->fs[b->i];
			uint64_t left = f->size - b->off;
			if (left == 0) {
				bundle_next_part(b);
				continue;
			}
			size_t want = n - got < left ? n - got : (size_t)left;
			ssize_t r = pread(f->fd, dst + got, want, (off_t)b->off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				b->failed = 1;
				return es_err(err, ES_EIO, "%s: read failed: %s", f->rel,
					      r < 0 ? strerror(errno) : "file shrank");
			}
			b->crc = crc32c(b->crc, dst + got, (size_t)r);
			b->off += (uint64_t)r;
			b->pos += (uint64_t)r;
			got += (size_t)r;
			continue;
		}
		unsigned char part[16 + ES_COLLECTION_NAME_MAX + 64 + 8];
		size_t plen = bundle_small_part(b, part);
		size_t k = plen - (size_t)b->off < n - got ? plen - (size_t)b->off : n - got;
		memcpy(dst + got, part + b->off, k);
		b->off += k;
		b->pos += k;
		got += k;
		if (b->off == plen)
			bundle_next_part(b);
	}
	return (ssize_t)got;
}

int es_store_bundle(es_store *s, int out, uint64_t *lsn_out, es_error *err)
{
	es_bundle *b;
	int rc = es_bundle_open(s, &b, err);
	if (rc)
		return rc;
	unsigned char *buf = es_malloc(1 << 20);
	if (!buf)
		rc = es_err(err, ES_ENOMEM, "out of memory");
	for (ssize_t r = 1; !rc && r > 0;) {
		r = es_bundle_read(b, buf, 1 << 20, err);
		if (r < 0)
			rc = (int)r;
		else if (r > 0 && write_full(out, buf, (size_t)r))
			rc = es_err(err, es_errno_code(errno), "writing the snapshot bundle: %s",
				    strerror(errno));
	}
	if (!rc && lsn_out)
		*lsn_out = b->lsn;
	es_free(buf);
	es_bundle_free(b);
	return rc;
}

/* ----------------------------------------------------------- follower side */

/* Which names a bundle may hold: the data directory's own files, nothing
 * that leaves it. */
static int bundle_name_ok(const char *rel)
{
	if (strcmp(rel, "MANIFEST") == 0)
		return 1;
	size_t l = strlen(rel);
	if (strncmp(rel, "wal/", 4) == 0) {
		if (l != 24 || strcmp(rel + 20, ".log") != 0)
			return 0;
		for (size_t i = 4; i < 20; i++)
			if (!strchr("0123456789abcdef", rel[i]) || !rel[i])
				return 0;
		return 1;
	}
	if (strncmp(rel, "snap/", 5) != 0 || l < 5 + 1 + 1 + 1 + 5 ||
	    strcmp(rel + l - 5, ".snap") != 0)
		return 0;
	const char *at = strrchr(rel, '@');
	if (!at || at < rel + 6 || at + 1 >= rel + l - 5)
		return 0;
	for (const char *p = at + 1; p < rel + l - 5; p++)
		if (*p < '0' || *p > '9')
			return 0;
	char name[ES_COLLECTION_NAME_MAX + 1];
	size_t nl = (size_t)(at - (rel + 5));
	if (nl > ES_COLLECTION_NAME_MAX)
		return 0;
	memcpy(name, rel + 5, nl);
	name[nl] = '\0';
	return es_collection_name_check(name, NULL) == 0;
}

/* Remove the files a data directory of ours holds under dir (MANIFEST,
 * snap/, wal/), the directories themselves only when rmdirs is set. */
static void wipe_store_files(const char *dir, int rmdirs)
{
	char path[4400];
	const char *subs[] = {"snap", "wal"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char full[4700];
			snprintf(full, sizeof full, "%s/%s", path, e->d_name);
			unlink(full);
		}
		if (d)
			closedir(d);
		if (rmdirs)
			rmdir(path);
	}
	snprintf(path, sizeof path, "%s/MANIFEST", dir);
	unlink(path);
}

static int read_exact(FILE *in, void *buf, size_t n, es_error *err)
{
	if (n && fread(buf, 1, n, in) != n)
		return es_err(err, ferror(in) ? ES_EIO : ES_ECORRUPT,
			      "snapshot bundle: %s", ferror(in) ? "read failed" : "cut short");
	return 0;
}

/* sync: fsync each file (and start its writeback early); without it the
 * files are left to es_store_install_sync. */
static int bundle_extract(FILE *in, const char *tmpdir, int sync, uint64_t *lsn,
			  es_error *err)
{
	unsigned char h[16];
	int rc = read_exact(in, h, 16, err);
	if (rc)
		return rc;
	if (memcmp(h, BUNDLE_MAGIC, 8) != 0)
		return es_err(err, ES_ECORRUPT, "snapshot bundle: bad magic (not an embedsrv "
			      "snapshot bundle)");
	*lsn = get_u64(h + 8);
	unsigned char *buf = es_malloc(1 << 20);
	if (!buf)
		return es_err(err, ES_ENOMEM, "out of memory");
	int manifest = 0;
	for (unsigned files = 0; !rc; files++) {
		unsigned char b8[8];
		if ((rc = read_exact(in, b8, 2, err)))
			break;
		uint16_t plen = get_u16(b8);
		if (plen == 0)
			break;
		char rel[ES_COLLECTION_NAME_MAX + 64];
		if (files >= BUNDLE_MAX_FILES || plen >= sizeof rel) {
			rc = es_err(err, ES_ECORRUPT, "snapshot bundle: entry %u: bad name length %u",
				    files, plen);
			break;
		}
		if ((rc = read_exact(in, rel, plen, err)))
			break;
		rel[plen] = '\0';
		if (memchr(rel, '\0', plen) || !bundle_name_ok(rel)) {
			rc = es_err(err, ES_ECORRUPT, "snapshot bundle: entry %u: '%.80s' is not a "
				    "file of a data directory", files, rel);
			break;
		}
		manifest |= strcmp(rel, "MANIFEST") == 0;
		if ((rc = read_exact(in, b8, 8, err)))
			break;
		uint64_t size = get_u64(b8);
		char path[4400];
		snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = es_err(err, errno == EEXIST ? ES_ECORRUPT : es_errno_code(errno),
				    "snapshot bundle: %s: %s", rel,
				    errno == EEXIST ? "listed twice" : strerror(errno));
			break;
		}
		uint32_t crc = 0;
		uint64_t done = 0, kicked = 0;
		for (uint64_t left = size; left && !rc;) {
			size_t n = left < (1 << 20) ? (size_t)left : (1 << 20);
			rc = read_exact(in, buf, n, err);
			if (!rc && write_full(fd, buf, n))
				rc = es_err(err, es_errno_code(errno), "%s: %s", path, strerror(errno));
			crc = crc32c(crc, buf, n);
			left -= n;
			done += n;
			/* start writing back what arrived while the rest downloads,
			 * so that the fsync below has little left to wait for */
			if (sync && !rc && done - kicked >= EXTRACT_KICK_BYTES) {
				sync_file_range(fd, (off_t)kicked, (off_t)(done - kicked),
						SYNC_FILE_RANGE_WRITE);
				kicked = done;
			}
		}
		if (!rc && (rc = read_exact(in, b8, 4, err)) == 0 && get_u32(b8) != crc)
			rc = es_err(err, ES_ECORRUPT, "snapshot bundle: %s: checksum mismatch", rel);
		if (sync && !rc && fsync(fd) != 0)
			rc = es_err(err, es_errno_code(errno), "%s: fsync: %s", path, strerror(errno));
		close(fd);
	}
	if (!rc && fgetc(in) != EOF)
		rc = es_err(err, ES_ECORRUPT, "snapshot bundle: bytes after the end");
	if (!rc && !manifest && *lsn)
		rc = es_err(err, ES_ECORRUPT, "snapshot bundle: no MANIFEST");
	es_free(buf);
	return rc;
}

/* The install is complete and durable: remove the BOOTSTRAP marker. */
static int drop_marker(const char *dir, es_error *err)
{
	char marker[4400];
	snprintf(marker, sizeof marker, "%s/BOOTSTRAP", dir);
	if (unlink(marker) != 0)
		return es_err(err, ES_EIO, "%s: %s", marker, strerror(errno));
	return es_fsync_parent_dir(marker, err);
}

static int install_bundle(const char *dir, FILE *in, int sync, uint64_t *lsn, es_error *err)
{
	char tmp[4096], path[4400], marker[4400];
	int rc = mkdir_p(dir, err);
	if (rc)
		return rc;
	snprintf(tmp, sizeof tmp, "%s/bootstrap.tmp", dir);
	wipe_store_files(tmp, 1);
	rmdir(tmp);
	if ((rc = mkdir_p(tmp, err)))
		return rc;
	snprintf(path, sizeof path, "%s/snap", tmp);
	if (!rc)
		rc = mkdir_p(path, err);
	snprintf(path, sizeof path, "%s/wal", tmp);
	if (!rc)
		rc = mkdir_p(path, err);
	if (!rc)
		rc = bundle_extract(in, tmp, sync, lsn, err);
	if (rc) {
		wipe_store_files(tmp, 1);
		rmdir(tmp);
		return rc;
	}
	/* From here until the marker goes, the directory is half replaced: a
	 * follower that finds the marker at its start bootstraps again. */
	snprintf(marker, sizeof marker, "%s/BOOTSTRAP", dir);
	int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || fsync(fd) != 0 || es_fsync_parent_dir(marker, NULL) != 0) {
		rc = es_err(err, es_errno_code(errno), "%s: %s", marker, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	close(fd);
	wipe_store_files(dir, 0);
	const char *subs[] = {"snap", "wal"};
	for (size_t i = 0; i < 2 && !rc; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
		rc = mkdir_p(path, err);
		char from[4400];
		snprintf(from, sizeof from, "%s/%s", tmp, subs[i]);
		DIR *d = rc ? NULL : opendir(from);
		struct dirent *e;
		while (d && !rc && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char a[4700], b[4700];
			snprintf(a, sizeof a, "%s/%s", from, e->d_name);
			snprintf(b, sizeof b, "%s/%s", path, e->d_name);
			if (rename(a, b) != 0)
				rc = es_err(err, ES_EIO, "rename %s: %s", a, strerror(errno));
		}
		if (d)
			closedir(d);
		if (!rc) {
			snprintf(path, sizeof path, "%s/%s/x", dir, subs[i]);
			rc = es_fsync_parent_dir(path, err);
		}
	}
	if (!rc) {
		char a[4400];
		snprintf(a, sizeof a, "%s/MANIFEST", tmp);
		snprintf(path, sizeof path, "%s/MANIFEST", dir);
		if (rename(a, path) != 0 && errno != ENOENT)
			rc = es_err(err, ES_EIO, "rename %s: %s", a, strerror(errno));
	}
	wipe_store_files(tmp, 1);
	rmdir(tmp);
	if (!rc && sync)
		rc = drop_marker(dir, err);
	return rc;
}

int es_store_install_bundle(const char *dir, FILE *in, uint64_t *lsn, es_error *err)
{
	return install_bundle(dir, in, 1, lsn, err);
}

int es_store_install_bundle_unsynced(const char *dir, FILE *in, uint64_t *lsn,
				     es_error *err)
{
	return install_bundle(dir, in, 0, lsn, err);
}

/* fsync path (a file or a directory); a file gone since (the store replaced
 * it, with its own fsyncs) is fine. */
static int fsync_path(const char *path, es_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : es_err(err, es_errno_code(errno), "%s: %s", path,
						    strerror(errno));
	int rc = fsync(fd) == 0 ? 0 : es_err(err, es_errno_code(errno), "%s: fsync: %s", path,
					     strerror(errno));
	close(fd);
	return rc;
}

int es_store_install_sync(const char *dir, es_error *err)
{
	char path[4400];
	int rc = 0;
	const char *subs[] = {"snap", "wal"};
	for (size_t i = 0; i < 2 && !rc; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
		DIR *d = opendir(path);
		if (!d)
			return es_err(err, ES_EIO, "%s: %s", path, strerror(errno));
		struct dirent *e;
		while (!rc && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char full[4700];
			snprintf(full, sizeof full, "%s/%s", path, e->d_name);
			rc = fsync_path(full, err);
		}
		closedir(d);
		if (!rc)
			rc = fsync_path(path, err);
	}
	snprintf(path, sizeof path, "%s/MANIFEST", dir);
	if (!rc)
		rc = fsync_path(path, err);
	if (!rc)
		rc = fsync_path(dir, err);
	if (!rc)
		rc = drop_marker(dir, err);
	return rc;
}

int es_store_needs_bootstrap(const char *dir)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/BOOTSTRAP", dir);
	if (access(path, F_OK) == 0)
		return 1; /* an install was cut short */
	snprintf(path, sizeof path, "%s/MANIFEST", dir);
	if (access(path, F_OK) == 0)
		return 0;
	snprintf(path, sizeof path, "%s/wal", dir);
	DIR *d = opendir(path);
	if (!d)
		return 1;
	struct dirent *e;
	int any = 0;
	while (!any && (e = readdir(d)))
		any = strlen(e->d_name) == 20 && strcmp(e->d_name + 16, ".log") == 0;
	closedir(d);
	return !any;
}

/* Apply one shipped record that is already in the follower's log: the
 * recovery path (replay_record), plus what the observer does for the
 * catalog (the manifest, a dropped collection's snapshot).  ck_mu held. */
static int follow_apply_one(es_store *s, uint64_t lsn, uint32_t type, const void *data,
			    size_t len, es_error *err)
{
	char dropped[ES_COLLECTION_NAME_MAX + 1] = "";
	uint64_t dropped_cl = 0;
	if (type == WAL_REC_DROP) {
		es_reader c;
		es_reader_mem(&c, data, len, NULL);
		struct meta *m;
		if (get_name(&c, dropped, NULL) == 0 && (m = meta_find(s, dropped)) &&
		    m->create_lsn < lsn)
			dropped_cl = m->create_lsn;
		else
			dropped[0] = '\0';
	}
	int rc = replay_record(s, lsn, type, data, len, err);
	if (rc)
		return rc;
	if (type == WAL_REC_CREATE || dropped[0]) {
		manifest_write(s, NULL); /* as obs_create / obs_drop: the log has it */
		if (dropped[0]) {
			char path[4096];
			snap_path(s, dropped, dropped_cl, path, sizeof path);
			unlink(path);
		}
	}
	return 0;
}

int es_store_follow_apply(es_store *s, const void *recs, size_t len, uint64_t *applied,
			  es_error *err)
{
	*applied = 0;
	if (!s->o.follower)
		return es_err(err, ES_EINVAL, "not a follower's store");
	struct rec {
		uint32_t type;
		const void *p;
		size_t n;
	} *rv = NULL;
	size_t nr = 0, cap = 0, off = 0;
	int rc = 0, prc = 0;
	es_error perr;
	es_error_clear(&perr);
	pthread_mutex_lock(&s->ck_mu); /* no snapshot between log and apply */
	pthread_rwlock_rdlock(&s->wal_lk);
	uint64_t first = wal_last_lsn(s->w) + 1, lsn = first;
	while (off < len) {
		struct rec r;
		size_t rl;
		prc = wal_record_parse((const unsigned char *)recs + off, len - off, lsn, &r.type,
				       &r.p, &r.n, &rl, &perr);
		if (prc)
			break;
		if (nr == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct rec *x = es_realloc(rv, nc * sizeof *x);
			if (!x) {
				rc = es_err(err, ES_ENOMEM, "out of memory");
				break;
			}
			rv = x;
			cap = nc;
		}
		uint64_t got;
		if ((rc = wal_write(s->w, r.type, r.p, r.n, &got, err)))
			break;
		rv[nr++] = r;
		off += rl;
		lsn++;
	}
	if (nr && (s->o.policy == WAL_FSYNC_ALWAYS ? wal_sync(s->w, NULL) : 0) != 0 && !rc)
		rc = es_err(err, ES_EIO, "fdatasync of the follower's log failed");
	uint64_t size = wal_size_bytes(s->w);
	pthread_rwlock_unlock(&s->wal_lk);
	/* what is in the log is applied, even when a later record failed: the
	 * next start would replay it anyway */
	for (size_t i = 0; i < nr; i++) {
		int arc = follow_apply_one(s, first + i, rv[i].type, rv[i].p, rv[i].n,
					   rc ? NULL : err);
		if (arc && !rc)
			rc = arc;
		if (!arc)
			*applied = first + i;
	}
	pthread_mutex_unlock(&s->ck_mu);
	es_free(rv);
	if (!rc && prc) {
		if (err)
			*err = perr;
		rc = prc;
	}
	if (size > s->o.checkpoint_bytes) {
		pthread_mutex_lock(&s->bg_mu);
		s->bg_kick = 1;
		pthread_cond_signal(&s->bg_cv);
		pthread_mutex_unlock(&s->bg_mu);
	}
	return rc;
}
