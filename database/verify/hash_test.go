package verify_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/verify"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }

// TestHashProgress: read in chunks of a few blocks (by ctid on 14 and
// later, by partition on every major), a table hashes as it does whole,
// and progress climbs to its size; a row changed changes the sum.
func TestHashProgress(t *testing.T) {
	defer verify.SetChunkBlocks(4)()
	db, _ := dbtest.Shared(t).NewDB(t)
	ctx := context.Background()
	if _, err := db.Exec(`
		CREATE TABLE plain (id int PRIMARY KEY, v text);
		INSERT INTO plain SELECT g, repeat('x', g % 100) FROM generate_series(1, 5000) g;
		DELETE FROM plain WHERE id % 7 = 0;
		CREATE TABLE parted (id int, v text) PARTITION BY RANGE (id);
		CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (3000);
		CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (3000) TO (10000);
		INSERT INTO parted SELECT g, md5(g::text) FROM generate_series(1, 8000) g;
		CREATE TABLE small (id int);
		INSERT INTO small VALUES (1);
		ANALYZE`); err != nil {
		t.Fatal(err)
	}
	var tidRange bool
	if err := db.QueryRow(`SELECT current_setting('server_version_num')::int >= 140000`).Scan(&tidRange); err != nil {
		t.Fatal(err)
	}
	tables, err := verify.Tables(ctx, db, "^public$", ".*")
	if err != nil || len(tables) != 3 {
		t.Fatalf("Tables = %+v, %v", tables, err)
	}
	// The estimates count a plain table's rows and a partitioned one's
	// partitions', and its size.
	for i, want := range []int64{8000, 4286, 1} {
		if tb := tables[i]; tb.EstRows != want || tb.Bytes == 0 {
			t.Errorf("%s: estimated %d rows, %d bytes; want %d rows and its size", tb.Name, tb.EstRows, tb.Bytes, want)
		}
	}
	// hashBoth hashes tb whole, then in chunks over three connections in
	// the same snapshot, with rows deleted in between that neither sees.
	hashBoth := func(tb verify.Table) (whole, chunked string, calls int) {
		t.Helper()
		tx, err := verify.Begin(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // read only
		n, sum, err := verify.Hash(ctx, tx, tb)
		if err != nil {
			t.Fatal(err)
		}
		var last int64
		readers, err := verify.JoinReaders(ctx, db, tx, 3)
		if err != nil {
			t.Fatal(err)
		}
		defer readers.Close()
		if _, err := db.Exec(`DELETE FROM ` + tb.Qualified() + ` WHERE id % 5 = 0`); err != nil {
			t.Fatal(err)
		}
		m, csum, err := readers.Hash(ctx, tb, func(done, size int64) {
			calls++
			if done < last || done > size || size != tb.Bytes {
				t.Errorf("%s: progress %d of %d after %d (size %d)", tb.Name, done, size, last, tb.Bytes)
			}
			last = done
		})
		if err != nil {
			t.Fatal(err)
		}
		if last != tb.Bytes {
			t.Errorf("%s: progress ended at %d of %d", tb.Name, last, tb.Bytes)
		}
		return sum + "/" + itoa(n), csum + "/" + itoa(m), calls
	}
	for _, tb := range tables {
		whole, chunked, calls := hashBoth(tb)
		if whole != chunked {
			t.Errorf("%s: whole %s, in chunks %s", tb.Name, whole, chunked)
		}
		// A plain table is read in ranges from 14 on, a partitioned one by
		// partition on every major.
		if want := tb.Bytes > 4*8192 && (tidRange || tb.Partitioned); want != (calls > 1) {
			t.Errorf("%s (%d bytes): progress told %d times", tb.Name, tb.Bytes, calls)
		}
	}
	before, _, _ := hashBoth(tables[1])
	if _, err := db.Exec(`UPDATE plain SET v = 'changed' WHERE id = 4999`); err != nil {
		t.Fatal(err)
	}
	if tables, err = verify.Tables(ctx, db, "^public$", "^plain$"); err != nil || len(tables) != 1 {
		t.Fatalf("Tables = %+v, %v", tables, err)
	}
	after, chunked, _ := hashBoth(tables[0])
	if after == before || after != chunked {
		t.Errorf("plain after a change: whole %s (before %s), in chunks %s", after, before, chunked)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
