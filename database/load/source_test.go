package load

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/pagarme/teleport/database/dbtest"
)

// TestPlanChunks: a big table with a one-column integer primary key is cut
// into ranges that hold every key between them, even ones written after, and
// each chunk's rows are those of its range; other tables are one range.
func TestPlanChunks(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.Shared(t).NewDB(t)
	if _, err := db.Exec(`CREATE TABLE public.big (id bigint PRIMARY KEY, v text);
		INSERT INTO public.big SELECT i * 7, repeat('x', 200) FROM generate_series(1, 20000) i;
		CREATE TABLE public.two (a int, b int, PRIMARY KEY (a, b));
		CREATE TABLE public.txt (id text PRIMARY KEY);
		CREATE TABLE public.extremes (id bigint PRIMARY KEY);
		INSERT INTO public.extremes VALUES (-9223372036854775808), (0), (9223372036854775807);
		CREATE TABLE public.few (id smallint PRIMARY KEY);
		INSERT INTO public.few VALUES (3), (4);
		ANALYZE`); err != nil {
		t.Fatal(err)
	}
	tables, err := LoadSourceTables(ctx, db, func(schema, _ string) bool { return schema == "public" })
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]SourceTable{}
	for _, st := range tables {
		byName[st.Name] = st
	}
	for name, key := range map[string]string{"big": "id", "two": "", "txt": "", "extremes": "id", "few": "id"} {
		if got := byName[name].ChunkKey; got != key {
			t.Errorf("ChunkKey of %s = %q, want %q", name, got, key)
		}
	}

	big := byName["big"]
	ranges, err := PlanChunks(ctx, db, big, big.EstBytes/5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ranges) < 5 || len(ranges) > 6 {
		t.Fatalf("big (%d bytes) in chunks of a fifth: %d ranges, want 5 or 6", big.EstBytes, len(ranges))
	}
	checkCover(t, ranges)
	// Rows written after the plan, beyond either end, fall in a range; the
	// ranges' rows add up to the table's, each once.
	if _, err := db.Exec(`INSERT INTO public.big VALUES (-5, 'low'), (1000000, 'high')`); err != nil {
		t.Fatal(err)
	}
	var sum int
	for _, r := range ranges {
		where := r.Where("id")
		if where == "" {
			t.Fatalf("range %+v of big has no condition", r)
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM public.big WHERE ` + where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("range %s holds no row", where)
		}
		sum += n
	}
	if sum != 20002 {
		t.Errorf("the ranges hold %d rows, the table 20002", sum)
	}

	// Whole: small, no usable key. Cut as far as keys go: few has 2 keys,
	// extremes spans every int64.
	for _, tc := range []struct {
		table string
		chunk int64
		want  int
	}{
		{"big", big.EstBytes, 1},
		{"big", 0, 1},
		{"two", 1, 1},
		{"txt", 1, 1},
		{"few", 1, 2},
		{"extremes", 1, 0},
	} {
		st := byName[tc.table]
		st.EstBytes = max(st.EstBytes, 10)
		if tc.table == "big" {
			st = big
		}
		rs, err := PlanChunks(ctx, db, st, tc.chunk, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkCover(t, rs)
		if tc.want > 0 && len(rs) != tc.want {
			t.Errorf("PlanChunks(%s, %d) = %d ranges, want %d", tc.table, tc.chunk, len(rs), tc.want)
		}
		if tc.table == "extremes" {
			if len(rs) < 2 {
				t.Errorf("extremes: %d ranges, want several", len(rs))
			}
			var sum int
			for _, r := range rs {
				var n int
				if err := db.QueryRow(`SELECT count(*) FROM public.extremes WHERE ` + r.Where("id")).Scan(&n); err != nil {
					t.Fatal(err)
				}
				sum += n
			}
			if sum != 3 {
				t.Errorf("extremes' ranges hold %d rows, want 3", sum)
			}
		}
	}
}

// checkCover fails unless rs run from open to open, each starting where the
// one before ended, each not empty.
func checkCover(t *testing.T, rs []KeyRange) {
	t.Helper()
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "[%s, %s) ", bound(r.Lo, math.MinInt64), bound(r.Hi, math.MaxInt64))
	}
	if rs[0].Lo != nil || rs[len(rs)-1].Hi != nil {
		t.Errorf("ranges %s: the first must be open below, the last above", b.String())
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].Lo == nil || rs[i-1].Hi == nil || *rs[i].Lo != *rs[i-1].Hi {
			t.Errorf("ranges %s: range %d does not start where %d ends", b.String(), i, i-1)
		} else if rs[i].Hi != nil && *rs[i].Hi <= *rs[i].Lo {
			t.Errorf("ranges %s: range %d is empty", b.String(), i)
		}
	}
}

func bound(p *int64, open int64) string {
	if p == nil {
		return fmt.Sprint("open ", open)
	}
	return fmt.Sprint(*p)
}
