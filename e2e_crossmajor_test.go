package main

import (
	"slices"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
)

// TestCrossMajor_NewerSourceOlderTarget replicates, from PostgreSQL 18 to
// 13, a table with a virtual generated column and a NULLS NOT DISTINCT
// index: the rows arrive with the same values, and the target's /status
// lists, under the source, what its major did without and why.
func TestCrossMajor_NewerSourceOlderTarget(t *testing.T) {
	t.Parallel()
	setPasswordEnv(t)
	p := &pair{src: dbtest.SharedMajor(t, 18), dst: dbtest.StartMajor(t, 13)}
	p.srcDB, p.srcName = p.src.NewDB(t)
	p.dstDB, p.dstName = p.dst.NewDB(t)
	execSQL(t, p.srcDB, `CREATE TABLE public.acct (id int PRIMARY KEY, code text, qty int NOT NULL,
		twice int GENERATED ALWAYS AS (qty * 2) VIRTUAL);
		CREATE UNIQUE INDEX acct_code ON public.acct (code) NULLS NOT DISTINCT`)
	p.start(t)
	execSQL(t, p.srcDB, `INSERT INTO public.acct (id, code, qty) SELECT i, 'c' || i, i FROM generate_series(1, 100) i`)
	execSQL(t, p.srcDB, `UPDATE public.acct SET qty = qty + 1 WHERE id <= 10`)
	p.waitSame(t, 30*time.Second, "acct")

	st, code, err := getStatus(p.dstPort, "")
	if err != nil || code != 200 || len(st.Sources) != 1 {
		t.Fatalf("target /status = %d %+v (%v), want one source", code, st, err)
	}
	var objects []string
	for _, s := range st.Sources[0].SchemaSkipped {
		objects = append(objects, s.Object)
		t.Logf("left out on PostgreSQL 13: %s: %s", s.Object, s.Reason)
	}
	slices.Sort(objects)
	if want := []string{`index "public"."acct_code"`, `table "public"."acct"`}; !slices.Equal(objects, want) {
		t.Errorf("target /status schema_skipped = %q, want %q", objects, want)
	}
}
