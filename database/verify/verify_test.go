package verify_test

import (
	"testing"

	"github.com/pagarme/teleport/database/verify"
)

func TestBuckets(t *testing.T) {
	for _, c := range []struct {
		rows int64
		want int
	}{{0, 16}, {32000, 16}, {32001, 32}, {1000000, 512}, {1 << 40, 65536}} {
		if got := verify.Buckets(c.rows); got != c.want {
			t.Errorf("Buckets(%d) = %d, want %d", c.rows, got, c.want)
		}
	}
}
