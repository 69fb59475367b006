// Package verify compares tables of a source and a target exactly, each
// side read in a snapshot at the same point of the stream: it hashes every
// row in SQL, so no row crosses the network, and compares the counts and
// the sums of the hashes.
package verify

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/lib/pq"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/server/wire"
)

// Table is a table to compare, with the columns hashed in their order.
type Table struct {
	Schema      string
	Name        string
	Partitioned bool
	Columns     []string
	Key         []string // the primary key's columns; none: rows are compared as a multiset
	EstRows     int64    // the planner's estimate
	Bytes       int64    // the size of its leaves' data on disk, for progress
}

// Buckets is how many buckets a table of about rows rows is hashed into:
// a power of two, about 2,000 rows each, at least 16 and at most 65,536,
// so a difference is narrowed down to a few thousand rows read again.
func Buckets(rows int64) int {
	b := 16
	for b < 65536 && int64(b)*2000 < rows {
		b *= 2
	}
	return b
}

// Qualified is the table's quoted name.
func (t Table) Qualified() string {
	return pq.QuoteIdentifier(t.Schema) + "." + pq.QuoteIdentifier(t.Name)
}

// Tables lists the tables whose schema and name match the anchored
// regular expressions, as the target's expression takes them.
func Tables(ctx context.Context, q database.Querier, schemaRegex, tableRegex string) ([]Table, error) {
	rows, err := q.QueryContext(ctx, query("verify_tables"), schemaRegex, tableRegex)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var ts []Table
	for rows.Next() {
		var t Table
		if err := rows.Scan(&t.Schema, &t.Name, &t.Partitioned, pq.Array(&t.Columns), pq.Array(&t.Key), &t.EstRows, &t.Bytes); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		ts = append(ts, t)
	}
	return ts, rows.Err()
}

// Begin opens the read-only REPEATABLE READ transaction a side hashes in,
// with the settings that fix how values print the same on both sides. Its
// snapshot is taken by the first query run in it.
func Begin(ctx context.Context, db *sql.DB) (*sql.Tx, error) { return begin(ctx, db, "") }

// Readers are transactions in one snapshot, the first one's, that
// Readers.Hash reads a long table over at once.
type Readers struct {
	txs       []*sql.Tx
	blockSize int64
	tidRange  bool // TID range scans: PostgreSQL 14 and later
}

// JoinReaders returns snap, a transaction from Begin, with n-1 more
// transactions begun in its snapshot (exported, then imported by each).
// Close ends those.
func JoinReaders(ctx context.Context, db *sql.DB, snap *sql.Tx, n int) (*Readers, error) {
	r := &Readers{txs: []*sql.Tx{snap}}
	if err := snap.QueryRowContext(ctx, `SELECT pg_catalog.current_setting('block_size')::int,
		pg_catalog.current_setting('server_version_num')::int >= 140000`).Scan(&r.blockSize, &r.tidRange); err != nil {
		return nil, fmt.Errorf("read the server's block size and version: %w", err)
	}
	if n < 2 {
		return r, nil
	}
	var id string
	if err := snap.QueryRowContext(ctx, `SELECT pg_catalog.pg_export_snapshot()`).Scan(&id); err != nil {
		return nil, fmt.Errorf("export the verify's snapshot: %w", err)
	}
	for len(r.txs) < n {
		tx, err := begin(ctx, db, id)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.txs = append(r.txs, tx)
	}
	return r, nil
}

// Close ends the transactions JoinReaders began; the first one is the
// caller's.
func (r *Readers) Close() {
	for _, tx := range r.txs[1:] {
		tx.Rollback() //nolint:errcheck // read only
	}
}

func begin(ctx context.Context, db *sql.DB, snapshotID string) (*sql.Tx, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin verify snapshot: %w", err)
	}
	if snapshotID != "" {
		if _, err := tx.ExecContext(ctx, `SET TRANSACTION SNAPSHOT `+pq.QuoteLiteral(snapshotID)); err != nil {
			tx.Rollback() //nolint:errcheck // the SET's error is the one to report
			return nil, fmt.Errorf("join the verify's snapshot: %w", err)
		}
	}
	for _, set := range []string{
		`SET LOCAL TimeZone = 'UTC'`, `SET LOCAL DateStyle = 'ISO, YMD'`, `SET LOCAL IntervalStyle = 'postgres'`,
		`SET LOCAL extra_float_digits = 1`, `SET LOCAL bytea_output = 'hex'`, `SET LOCAL search_path = pg_catalog`,
	} {
		if _, err := tx.ExecContext(ctx, set); err != nil {
			tx.Rollback() //nolint:errcheck // the SET's error is the one to report
			return nil, fmt.Errorf("begin verify snapshot: %s: %w", set, err)
		}
	}
	return tx, nil
}

// Hash returns the rows of t and the sum of a 32-bit hash of each row's
// text (its columns in t's order), in tx's snapshot: the cheapest scan
// that tells equal tables (a row changed goes unnoticed only if its two
// versions hash alike, one chance in four billion). A partitioned table is
// read with its partitions; a plain one without the tables that inherit
// from it.
func Hash(ctx context.Context, tx *sql.Tx, t Table) (rows int64, sum string, err error) {
	if err := tx.QueryRowContext(ctx, hashQuery(t, from(t), "")).Scan(&rows, &sum); err != nil {
		return 0, "", fmt.Errorf("hash %s: %w", t.Qualified(), err)
	}
	return rows, sum, nil
}

// hashQuery is Hash's query of t's rows read from from, alias t, where
// where, if not empty, begins with WHERE.
func hashQuery(t Table, from, where string) string {
	return fmt.Sprintf(`SELECT pg_catalog.count(*), coalesce(pg_catalog.sum(pg_catalog.hashtext(ROW(%s)::text)), 0) FROM %s t%s`,
		columnList(t.Columns), from, where)
}

// chunkBlocks is how many blocks Readers.Hash reads per query: 64 MiB of
// 8 kB blocks.
var chunkBlocks int64 = 8192

// Progress is told, as a table is hashed, the bytes read so far and the
// bytes there are. It is called from one goroutine at a time.
type Progress func(done, size int64)

// Hash is the package's Hash over r's transactions, telling progress, for a
// table larger than a chunk: each leaf (the table, or each partition of a partitioned
// one) is read in ranges of chunkBlocks blocks by ctid, with a TID range
// scan (PostgreSQL 14 and later; 13 reads each leaf whole), the ranges
// shared out among the transactions, which read them at once (as a
// parallel query would read the table whole), and progress told after
// each. Counts and sums add up, so the result is Hash's, and the other
// side may read the table whole. A table of a chunk or less is read whole
// by the first transaction.
func (r *Readers) Hash(ctx context.Context, t Table, progress Progress) (rows int64, sum string, err error) {
	txs, blockSize, tidRange := r.txs, r.blockSize, r.tidRange
	if t.Bytes <= chunkBlocks*blockSize {
		rows, sum, err := Hash(ctx, txs[0], t)
		progress(t.Bytes, t.Bytes)
		return rows, sum, err
	}
	type chunk struct {
		leaf  string
		where string
		bytes int64
	}
	var chunks []chunk
	var size int64
	lr, err := txs[0].QueryContext(ctx, `SELECT l.oid::regclass::text, l.relkind = 'r', pg_catalog.pg_relation_size(l.oid)
		FROM pg_catalog.pg_class l WHERE (l.oid = $1::regclass AND l.relkind = 'r')
		   OR l.oid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree($1::regclass) p WHERE p.isleaf)
		ORDER BY 3 DESC, 1`, t.Qualified())
	if err != nil {
		return 0, "", fmt.Errorf("hash %s: list its leaves: %w", t.Qualified(), err)
	}
	for lr.Next() {
		var leaf string
		var heap bool
		var bytes int64
		if err := lr.Scan(&leaf, &heap, &bytes); err != nil {
			lr.Close()
			return 0, "", fmt.Errorf("hash %s: list its leaves: %w", t.Qualified(), err)
		}
		size += bytes
		blocks := bytes / blockSize
		if !heap || !tidRange || blocks <= chunkBlocks {
			chunks = append(chunks, chunk{leaf: leaf, bytes: bytes})
			continue
		}
		// The last range has no end: blocks added since the size was read
		// hold nothing the snapshot sees, but the scan must not assume it.
		for b := int64(0); b < blocks; b += chunkBlocks {
			c := chunk{leaf: leaf, where: fmt.Sprintf(` WHERE t.ctid OPERATOR(pg_catalog.>=) '(%d,0)'::tid`, b),
				bytes: min(chunkBlocks, blocks-b) * blockSize}
			if b+chunkBlocks < blocks {
				c.where += fmt.Sprintf(` AND t.ctid OPERATOR(pg_catalog.<) '(%d,0)'::tid`, b+chunkBlocks)
			}
			chunks = append(chunks, c)
		}
	}
	lr.Close()
	if err := lr.Err(); err != nil {
		return 0, "", fmt.Errorf("hash %s: list its leaves: %w", t.Qualified(), err)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu          sync.Mutex
		total, done int64
		next        = make(chan chunk)
		wg          sync.WaitGroup
	)
	for _, tx := range txs {
		wg.Go(func() {
			for c := range next {
				var n, s int64
				if err := tx.QueryRowContext(ctx, hashQuery(t, "ONLY "+c.leaf, c.where)).Scan(&n, &s); err != nil {
					cancel(fmt.Errorf("hash %s: %w", t.Qualified(), err))
					return
				}
				mu.Lock()
				rows += n
				total += s
				done += c.bytes
				progress(done, size)
				mu.Unlock()
			}
		})
	}
feed:
	for _, c := range chunks {
		select {
		case next <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, "", err
	}
	return rows, strconv.FormatInt(total, 10), nil
}

// HashBuckets returns, for the buckets that hold rows of t, the rows and
// the sum of a 64-bit hash of each row's text, in one scan: where Hash
// found a difference, the buckets that differ are the rows to read. A row
// goes to the bucket of its hash's low bits.
func HashBuckets(ctx context.Context, tx *sql.Tx, t Table, buckets int) ([]wire.BucketHash, error) {
	q := fmt.Sprintf(`SELECT (h OPERATOR(pg_catalog.&) %d)::int, pg_catalog.count(*), pg_catalog.sum(h)::text
		FROM (SELECT pg_catalog.hashtextextended(ROW(%s)::text, 0) AS h FROM %s t) s
		GROUP BY 1 ORDER BY 1`, buckets-1, columnList(t.Columns), from(t))
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", t.Qualified(), err)
	}
	defer rows.Close()
	out := []wire.BucketHash{}
	for rows.Next() {
		var b wire.BucketHash
		if err := rows.Scan(&b.Bucket, &b.Rows, &b.Sum); err != nil {
			return nil, fmt.Errorf("hash %s: %w", t.Qualified(), err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("hash %s: %w", t.Qualified(), err)
	}
	return out, nil
}

// Rows returns the rows of t in the given buckets (of buckets), ordered,
// at most limit: each row's key as text and its hash, or, for a table
// without a key, each distinct row's text, hash and count.
func Rows(ctx context.Context, tx *sql.Tx, t Table, buckets int, in []int, limit int) ([]wire.KeyHash, error) {
	key, group := "ROW("+columnList(t.Key)+")::text", ""
	if len(t.Key) == 0 {
		key, group = "ROW("+columnList(t.Columns)+")::text", " GROUP BY 1, 2"
	}
	count := "1"
	if group != "" {
		count = "pg_catalog.count(*)"
	}
	q := fmt.Sprintf(`SELECT k, h::text, %s FROM (
		    SELECT %s AS k, pg_catalog.hashtextextended(ROW(%s)::text, 0) AS h FROM %s t) s
		WHERE (h OPERATOR(pg_catalog.&) %d)::int = ANY ($1::int[])%s
		ORDER BY 1, 2 LIMIT %d`, count, key, columnList(t.Columns), from(t), buckets-1, group, limit)
	rows, err := tx.QueryContext(ctx, q, pq.Array(in))
	if err != nil {
		return nil, fmt.Errorf("read rows of %s: %w", t.Qualified(), err)
	}
	defer rows.Close()
	out := []wire.KeyHash{}
	for rows.Next() {
		var r wire.KeyHash
		if err := rows.Scan(&r.Key, &r.Hash, &r.N); err != nil {
			return nil, fmt.Errorf("read rows of %s: %w", t.Qualified(), err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// columnList is columns quoted and comma-separated.
func columnList(columns []string) string {
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = pq.QuoteIdentifier(c)
	}
	return strings.Join(cols, ", ")
}

// from is what a query reads t from: a partitioned table with its
// partitions, a plain one without the tables that inherit from it.
func from(t Table) string {
	if t.Partitioned {
		return t.Qualified()
	}
	return "ONLY " + t.Qualified()
}
