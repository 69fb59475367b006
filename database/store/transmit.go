package store

import (
	"context"
	"fmt"

	"github.com/pagarme/teleport/database"
)

// GetTargetState returns where target stands without locking it: the transmitter compares it with what the target reports.
func GetTargetState(ctx context.Context, q database.Querier, target string) (TargetState, error) {
	var t TargetState
	err := q.QueryRowContext(ctx, query("batch_target_state"), target).
		Scan(&t.Name, &t.LastTick, &t.NextSeq, &t.AckedSeq, &t.AppliedSeq)
	if err != nil {
		return TargetState{}, fmt.Errorf("read state of target %s: %w", target, err)
	}
	return t, nil
}
